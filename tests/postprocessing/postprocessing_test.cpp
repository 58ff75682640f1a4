// Postprocessing (issue #24): the steps on hand-made channels (nested structures keep their own
// components), the plan file, the decision on cross-validation predictions (and that applying it
// to the folder scores what the decision said), and `mlseg ensemble`'s mean of probabilities.
#include "mlseg/postprocessing/postprocessing.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/evaluation/evaluate.h"
#include "mlseg/inference/ensemble.h"
#include "mlseg/inference/prediction_folder.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/postprocessing/determine_postprocessing.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// Two channels on 12 x 20 x 20: "organ" is a big block plus a 2-voxel speck far away; "lesion"
// is a 2-voxel blob inside the block and a 1-voxel speck inside the block too.
torch::Tensor nested_masks() {
  torch::Tensor masks = torch::zeros({2, 12, 20, 20}, torch::kUInt8);
  masks[0].slice(0, 2, 10).slice(1, 2, 12).slice(2, 2, 12).fill_(1);
  masks[0][11][18].slice(0, 17, 19).fill_(1);
  masks[1][5][5].slice(0, 5, 7).fill_(1);
  masks[1][8][9][9] = 1;
  return masks;
}

PostprocessingPlan plan_of(std::vector<PostprocessingStep> steps) {
  PostprocessingPlan plan;
  plan.channel_names = {"organ", "lesion"};
  plan.steps = std::move(steps);
  return plan;
}

TEST(Postprocessing, KeepLargestActsOnOneChannelAndANestedStructureKeepsItsComponents) {
  const torch::Tensor masks = nested_masks();
  const torch::Tensor organ = apply_postprocessing(plan_of({{PostprocessingKind::keep_largest, 0, 0}}), masks);
  EXPECT_EQ(organ[0].sum().item<std::int64_t>(), 8 * 10 * 10);  // the speck is gone
  EXPECT_TRUE(torch::equal(organ[1], masks[1]));                // the lesion's two components stay
  const torch::Tensor lesion = apply_postprocessing(plan_of({{PostprocessingKind::keep_largest, 1, 0}}), masks);
  EXPECT_EQ(lesion[1].sum().item<std::int64_t>(), 2);
  EXPECT_EQ(lesion[1][8][9][9].item<int>(), 0);
  EXPECT_TRUE(torch::equal(lesion[0], masks[0]));
}

TEST(Postprocessing, KeepLargestForegroundUsesTheUnionOfChannels) {
  torch::Tensor masks = nested_masks();
  // A lesion voxel touching the organ's speck diagonally joins it to no larger component: the
  // union's largest component is the block (with the lesion inside it).
  const torch::Tensor kept = apply_postprocessing(plan_of({{PostprocessingKind::keep_largest_foreground, -1, 0}}), masks);
  EXPECT_EQ(kept[0].sum().item<std::int64_t>(), 8 * 10 * 10);
  EXPECT_EQ(kept[1].sum().item<std::int64_t>(), 3);  // both lesion components lie in the block
}

TEST(Postprocessing, RemoveSmallKeepsComponentsOfAtLeastTheSize) {
  const torch::Tensor masks = nested_masks();
  const torch::Tensor two = apply_postprocessing(plan_of({{PostprocessingKind::remove_small, 1, 2}}), masks);
  EXPECT_EQ(two[1].sum().item<std::int64_t>(), 2);  // the 1-voxel speck goes, the 2-voxel blob stays
  const torch::Tensor three = apply_postprocessing(plan_of({{PostprocessingKind::remove_small, 1, 3}}), masks);
  EXPECT_EQ(three[1].sum().item<std::int64_t>(), 0);
  const torch::Tensor one = apply_postprocessing(plan_of({{PostprocessingKind::remove_small, 1, 1}}), masks);
  EXPECT_TRUE(torch::equal(one, masks));
}

TEST(Postprocessing, PlanFileRoundTripsAndBadEntriesNameTheProblem) {
  const PostprocessingPlan plan = plan_of({{PostprocessingKind::keep_largest_foreground, -1, 0},
                                           {PostprocessingKind::keep_largest, 0, 0},
                                           {PostprocessingKind::remove_small, 1, 30}});
  const PostprocessingPlan back = postprocessing_plan_from_json(postprocessing_plan_json(plan), "test");
  ASSERT_EQ(back.steps.size(), 3u);
  EXPECT_EQ(back.describe(), plan.describe());
  EXPECT_EQ(back.steps[2].min_voxels, 30);
  EXPECT_EQ(back.steps[1].channel, 0);
  Json broken = postprocessing_plan_json(plan);
  broken["steps"][1]["channel"] = "liver";
  try {
    postprocessing_plan_from_json(broken, "pp.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("liver"), std::string::npos) << e.what();
  }
  broken = postprocessing_plan_json(plan);
  broken["steps"][0]["kind"] = "fill_holes";
  EXPECT_THROW(postprocessing_plan_from_json(broken, "pp.json"), Error);
  EXPECT_THROW(apply_postprocessing(plan, torch::zeros({3, 4, 4, 4})), Error);
}

// A prediction folder as `mlseg predict` writes it, from codes (and probabilities) given here.
struct FolderWriter {
  ModelDescription model;
  ExportOptions options;
  void begin(const fs::path& folder) const {
    fs::create_directories(folder);
    write_text_file_atomically(folder / "dataset.json", prediction_dataset_json(model, options).dump(2) + "\n");
    write_text_file_atomically(folder / kPredictionInfoFileName, prediction_info_json(model, options).dump(2) + "\n");
  }
  void write(const fs::path& folder, const std::string& case_id, const CodeVolume& code, const Geometry& geometry,
             const torch::Tensor& probabilities = {}) const {
    PredictedCase prediction;
    prediction.case_id = case_id;
    prediction.code = code;
    prediction.geometry = geometry;
    prediction.encoding = model.encoding;
    prediction.channel_names = model.channel_names;
    prediction.probabilities = probabilities;
    export_prediction(prediction, folder, model, options);
  }
};

class PostprocessingPhantom : public ::testing::Test {
 protected:
  void SetUp() override {
    PhantomOptions phantom;
    phantom.num_cases = 4;
    phantom.shape_zyx = {16, 32, 32};
    phantom.num_channels = 3;
    phantom.show_progress = false;
    phantom.threads = 1;
    raw_ = dir_ / "raw" / "Dataset900_Phantom";
    write_phantom_dataset(raw_, phantom);
    dataset_ = load_dataset(raw_);
    writer_.model.channel_names = phantom_channel_names(3);
    writer_.model.encoding = LabelEncoding::sigmoid(3);
    writer_.model.dataset_json = read_json_file(raw_ / "dataset.json");
    writer_.options.format = PredictionFormat::bitmask;
  }
  mlseg::testing::TempDir dir_;
  fs::path raw_;
  Dataset dataset_;
  FolderWriter writer_;
};

TEST_F(PostprocessingPhantom, TheDecisionRemovesSpuriousComponentsAndTheFolderScoresWhatItSaid) {
  // Cross-validation "predictions": the truth plus false positives: in channel 0 (body) two specks
  // far from everything, which the foreground step removes; in channel 1 (organ) a speck inside
  // the body away from the organ, which only a per-channel step removes; channel 2 exactly right.
  const fs::path predictions = dir_ / "cv";
  writer_.begin(predictions);
  for (const CaseFiles& files : dataset_.training) {
    const CaseLabels truth = read_case_labels(dataset_, files);
    torch::Tensor masks = decode_channels(truth.code).clone();
    const torch::Tensor body = masks[0].to(torch::kBool).clone();
    masks[0][0][0].slice(0, 0, 2).fill_(1);
    masks[0][15][31].slice(0, 29, 32).fill_(1);
    const torch::Tensor near_organ = torch::max_pool3d(masks.slice(0, 1, 2).to(torch::kFloat), {7, 7, 7}, {1, 1, 1}, {3, 3, 3}).gt(0)[0];
    const torch::Tensor free = (body & near_organ.logical_not()).nonzero();
    ASSERT_GT(free.size(0), 0) << "body voxels away from the organ";
    const std::int64_t z = free[0][0].item<std::int64_t>(), y = free[0][1].item<std::int64_t>(), x = free[0][2].item<std::int64_t>();
    masks[1][z][y][x] = 1;
    writer_.write(predictions, files.case_id, code_from_masks(masks), truth.geometry);
  }
  DeterminePostprocessingOptions options;
  options.show_progress = false;
  options.threads = 2;
  const PostprocessingDecision decision = determine_postprocessing(read_prediction_folder(predictions), dataset_, options);
  std::cout << format_postprocessing_decision(decision);
  EXPECT_EQ(decision.cases, 4);
  for (int c : {0, 1}) {
    ASSERT_TRUE(decision.dice_before[c].defined() && decision.dice_after[c].defined());
    EXPECT_LT(decision.dice_before[c].value(), 1.0) << c;
    EXPECT_DOUBLE_EQ(decision.dice_after[c].value(), 1.0) << c;
  }
  ASSERT_GE(decision.plan.steps.size(), 2u) << decision.plan.describe();
  EXPECT_EQ(decision.plan.steps[0].kind, PostprocessingKind::keep_largest_foreground);
  EXPECT_EQ(decision.plan.steps[1].channel, 1) << decision.plan.describe();
  EXPECT_EQ(decision.plan.steps[1].kind, PostprocessingKind::keep_largest) << "keep_largest wins ties with remove_small";
  EXPECT_NE(format_postprocessing_decision(decision).find("left out"), std::string::npos);  // the empty rule is printed
  // Applied to the folder, `mlseg evaluate` gives the decision's Dice.
  PostprocessFolderOptions apply;
  apply.show_progress = false;
  const PostprocessFolderResult result = postprocess_folder(predictions, dir_ / "pp", decision.plan, apply);
  EXPECT_EQ(result.cases, 4);
  EXPECT_EQ(result.voxels_removed[0], 4 * 5);
  EXPECT_EQ(result.voxels_removed[1], 4);
  EXPECT_EQ(result.voxels_removed[2], 0);
  EvaluateOptions evaluate;
  evaluate.show_progress = false;
  evaluate.metrics = "dice";
  evaluate.prediction_dataset_json = dir_ / "pp" / "dataset.json";
  const EvaluationResult scored = evaluate_folders(raw_ / "labelsTr", dir_ / "pp", evaluate);
  for (std::size_t c = 0; c < 3; ++c) {
    SCOPED_TRACE(c);
    const MetricValue mean = scored.channels[c].aggregates.at(Metric::dice).mean;
    ASSERT_EQ(mean.defined(), decision.dice_after[c].defined());
    if (mean.defined()) EXPECT_NEAR(mean.value(), decision.dice_after[c].value(), 1e-12);
  }
  // The output folder is a prediction folder again; the channels must match the plan.
  EXPECT_NO_THROW(read_prediction_folder(dir_ / "pp"));
  PostprocessingPlan other = decision.plan;
  other.channel_names[0] = "liver";
  EXPECT_THROW(postprocess_folder(predictions, dir_ / "pp2", other, apply), Error);
}

TEST_F(PostprocessingPhantom, EnsembleIsTheMeanOfTheProbabilities) {
  writer_.options.save_probabilities = true;
  const fs::path a = dir_ / "a", b = dir_ / "b";
  writer_.begin(a);
  writer_.begin(b);
  torch::manual_seed(3);
  std::map<std::string, torch::Tensor> pa, pb;
  for (const CaseFiles& files : dataset_.training) {
    const CaseLabels truth = read_case_labels(dataset_, files);
    const auto shape = truth.code.shape_zyx();
    pa[files.case_id] = torch::rand({3, shape[0], shape[1], shape[2]});
    pb[files.case_id] = torch::rand({3, shape[0], shape[1], shape[2]});
    writer_.write(a, files.case_id, code_from_masks(pa[files.case_id].gt(0.5)), truth.geometry, pa[files.case_id]);
    writer_.write(b, files.case_id, code_from_masks(pb[files.case_id].gt(0.5)), truth.geometry, pb[files.case_id]);
  }
  EnsembleOptions options;
  options.show_progress = false;
  options.save_probabilities = true;
  options.format = PredictionFormat::multihot4d;
  const EnsembleResult result = ensemble_folders({a, b}, dir_ / "ens", options);
  EXPECT_EQ(result.cases, 4);
  const PredictionFolderInfo info = read_prediction_folder(dir_ / "ens");
  EXPECT_EQ(info.export_options.format, PredictionFormat::multihot4d);
  for (const auto& c : list_prediction_cases(info)) {
    SCOPED_TRACE(c.case_id);
    const torch::Tensor mean = (pa[c.case_id] + pb[c.case_id]) / 2;
    EXPECT_TRUE(torch::allclose(read_prediction_probabilities(info, c), mean, 0, 1e-6));
    EXPECT_TRUE(torch::equal(decode_channels(read_prediction_case(info, c).code), mean.gt(0.5).to(torch::kUInt8)));
  }
  // A folder without probabilities, or with other channels, is refused naming the fix.
  writer_.options.save_probabilities = false;
  writer_.begin(dir_ / "c");
  try {
    ensemble_folders({a, dir_ / "c"}, dir_ / "ens2", options);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--save-probabilities"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ensemble_folders({a}, dir_ / "ens3", options), Error);
}

TEST_F(PostprocessingPhantom, SoftmaxEnsembleTakesTheArgmaxOfTheMeanClassProbabilities) {
  writer_.model.encoding = LabelEncoding::softmax(3);
  writer_.options.save_probabilities = true;
  writer_.options.format = PredictionFormat::per_channel;
  const fs::path a = dir_ / "sa", b = dir_ / "sb";
  writer_.begin(a);
  writer_.begin(b);
  const CaseFiles& files = dataset_.training.front();
  const CaseLabels truth = read_case_labels(dataset_, files);
  const auto shape = truth.code.shape_zyx();
  torch::manual_seed(4);
  const torch::Tensor qa = torch::softmax(torch::randn({4, shape[0], shape[1], shape[2]}), 0);
  const torch::Tensor qb = torch::softmax(torch::randn({4, shape[0], shape[1], shape[2]}), 0);
  writer_.write(a, files.case_id, writer_.model.encoding.code_from_outputs(qa, false), truth.geometry, qa);
  writer_.write(b, files.case_id, writer_.model.encoding.code_from_outputs(qb, false), truth.geometry, qb);
  EnsembleOptions options;
  options.show_progress = false;
  ensemble_folders({a, b}, dir_ / "sens", options);
  const PredictionFolderInfo info = read_prediction_folder(dir_ / "sens");
  const auto cases = list_prediction_cases(info);
  ASSERT_EQ(cases.size(), 1u);
  const torch::Tensor argmax = ((qa + qb) / 2).argmax(0);
  const torch::Tensor masks = decode_channels(read_prediction_case(info, cases[0]).code);
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(torch::equal(masks[c].to(torch::kBool), argmax.eq(c + 1))) << c;
}

}  // namespace
