// The cascade (issue #24 part 1): 3d_lowres's cross-validation predictions as extra input
// channels of 3d_cascade_fullres, trained and predicted on a tiny phantom with overlapping
// channels; the previous stage's channels stay per channel (never a collapsed label map), and the
// prediction path feeds the network exactly what training fed it.
#include "mlseg/inference/cascade.h"

#include <gtest/gtest.h>

#include <fstream>

#include "mlseg/core/error.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/inference/predict.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/training/cascade_priors.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/postprocessing/find_best_configuration.h"
#include "test_support.h"
#include "training/training_test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

/// Adds nnU-Net's 3d_lowres (3d_fullres at twice the spacing) and 3d_cascade_fullres entries to
/// the tiny dataset's plans, and two folds to splits_final.json.
void add_cascade_plans(const mlseg::testing::TinyTrainingDataset& data) {
  Json plans = read_json_file(data.dataset_work / "plans.json");
  Json lowres = plans["configurations"]["3d_fullres"];
  for (auto& s : lowres["spacing"]) s = s.get<double>() * 2.0;
  lowres["batch_dice"] = false;
  lowres["next_stage"] = "3d_cascade_fullres";
  plans["configurations"]["3d_lowres"] = lowres;
  plans["configurations"]["3d_cascade_fullres"] = Json{{"inherits_from", "3d_fullres"}, {"previous_stage", "3d_lowres"}};
  write_json_file(data.dataset_work / "plans.json", plans);
  const std::vector<std::string> cases = read_json_file(data.dataset_work / "preprocessed" / "3d_fullres" / kStoreFile)["cases"];
  Json splits = Json::array();
  for (int k = 0; k < 2; ++k) {
    Json fold{{"train", Json::array()}, {"val", Json::array()}};
    for (std::size_t i = 0; i < cases.size(); ++i) fold[static_cast<int>(i % 2) == k ? "val" : "train"].push_back(cases[i]);
    splits.push_back(fold);
  }
  write_json_file(data.dataset_work / "splits_final.json", splits);
}

std::string train_command(const mlseg::testing::TinyTrainingDataset& data, const std::string& configuration, int fold) {
  return "train " + data.raw.string() + " -c " + configuration + " -f " + std::to_string(fold) +
         " --epochs 1 --iters-per-epoch 2 --val-iterations 1 --loader-workers 1 --threads 1 --work-dir " + data.work.string() + " -q";
}

TEST(CascadePlans, InheritingEntriesResolveIntoWholeConfigurations) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 2, PhantomLabelFormat::bitmask, 4);
  add_cascade_plans(data);
  const PlansFile plans = read_plans(data.dataset_work / "plans.json");
  const PlannedConfiguration& cascade = plans.configuration("3d_cascade_fullres");
  const PlannedConfiguration& fullres = plans.configuration("3d_fullres");
  EXPECT_EQ(cascade.previous_stage, "3d_lowres");
  EXPECT_EQ(cascade.data_configuration, "3d_fullres") << "nnU-Net's cascade trains on 3d_fullres's data";
  EXPECT_EQ(fullres.data_configuration, "3d_fullres");
  EXPECT_EQ(cascade.patch_size, fullres.patch_size);
  EXPECT_EQ(cascade.spacing_mm, fullres.spacing_mm);
  EXPECT_TRUE(plans.configuration("3d_lowres").previous_stage.empty());
  EXPECT_EQ(plans.json["configurations"]["3d_cascade_fullres"]["architecture"], plans.json["configurations"]["3d_fullres"]["architecture"]);
  // A child that overrides a key keeps its own data; a loop is an error naming the file.
  Json raw = read_json_file(data.dataset_work / "plans.json");
  raw["configurations"]["3d_cascade_fullres"]["batch_size"] = 3;
  const PlansFile overridden = plans_from_json(raw, "plans.json");
  EXPECT_EQ(overridden.configuration("3d_cascade_fullres").batch_size, 3);
  EXPECT_EQ(overridden.configuration("3d_cascade_fullres").data_configuration, "3d_cascade_fullres");
  raw["configurations"]["3d_fullres"] = Json{{"inherits_from", "3d_cascade_fullres"}};
  EXPECT_THROW(plans_from_json(raw, "plans.json"), Error);
}

TEST(CascadeMasks, PreviousStageChannelsAreResampledLogitsThresholdedPerChannel) {
  // Two overlapping sigmoid channels on a 2x4x4 grid, carried to 4x8x8.
  torch::Tensor logits = torch::full({2, 2, 4, 4}, -5.0f);
  logits[0].slice(2, 0, 2).fill_(5.0f);   // channel 0: x < 2
  logits[1].slice(1, 0, 2).fill_(5.0f);   // channel 1: y < 2 (overlaps channel 0)
  const LabelEncoding sigmoid = LabelEncoding::of_kind(EncodingKind::sigmoid, 2, {});
  const torch::Tensor masks = previous_stage_masks(logits, sigmoid, {2, 2, 2}, {4, 8, 8}, {1, 1, 1}, 3.0, 1);
  ASSERT_EQ(masks.sizes(), (std::vector<std::int64_t>{2, 4, 8, 8}));
  EXPECT_EQ(masks.scalar_type(), torch::kUInt8);
  EXPECT_EQ(masks[0].select(2, 0).min().item<int>(), 1);
  EXPECT_EQ(masks[0].select(2, 7).max().item<int>(), 0);
  EXPECT_EQ(masks[1].select(1, 0).min().item<int>(), 1);
  EXPECT_GT(masks[0].logical_and(masks[1]).sum().item<int>(), 0) << "overlap survives: one channel per channel, no label map";
  // Softmax: one-hot of the foreground classes.
  torch::Tensor classes = torch::zeros({3, 2, 4, 4});
  classes[1].slice(2, 0, 2).fill_(5.0f);
  classes[2].slice(2, 2, 4).fill_(5.0f);
  const LabelEncoding softmax = LabelEncoding::of_kind(EncodingKind::softmax, 2, {});
  const torch::Tensor onehot = previous_stage_masks(classes, softmax, {1, 1, 1}, {2, 4, 4}, {1, 1, 1}, 3.0, 1);
  EXPECT_TRUE(torch::equal(onehot.sum(0), torch::ones({2, 4, 4}, torch::kUInt8)));
  const torch::Tensor image = torch::rand({1, 2, 4, 4});
  const torch::Tensor input = append_previous_stage(image, onehot);
  ASSERT_EQ(input.size(0), 3);
  EXPECT_TRUE(torch::equal(input.narrow(0, 0, 1), image));
  EXPECT_THROW(append_previous_stage(image, masks), Error);
}

// Three phantom channels in `format`, planned with `encoding`.
void train_and_predict_cascade(PhantomLabelFormat format, const std::string& encoding) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, format, 6);
  mlseg::testing::replan_tiny_dataset(data, encoding);
  ASSERT_EQ(read_json_file(data.dataset_work / "plans.json")["label_encoding"], encoding);
  add_cascade_plans(data);

  // The cascade refuses to start before its first stage's folds are trained, naming them.
  const auto early = mlseg::testing::run_mlseg(train_command(data, "3d_cascade_fullres", 0));
  EXPECT_NE(early.exit_code, 0);
  EXPECT_NE(early.output.find("mlseg train DATASET -c 3d_lowres -f 0"), std::string::npos) << early.output;
  EXPECT_NE(early.output.find("-f 1"), std::string::npos) << early.output;

  for (int fold = 0; fold < 2; ++fold) {
    const auto lowres = mlseg::testing::run_mlseg(train_command(data, "3d_lowres", fold));
    ASSERT_EQ(lowres.exit_code, 0) << lowres.output;
  }
  const auto cascade = mlseg::testing::run_mlseg(train_command(data, "3d_cascade_fullres", 0));
  ASSERT_EQ(cascade.exit_code, 0) << cascade.output;

  // Every training case got its previous-stage prediction on 3d_fullres's grid, as codes of the
  // three channels.
  const fs::path results = data.dataset_work / "results";
  const fs::path prior_dir = next_stage_prior_dir(data.dataset_work, "3d_lowres", "3d_cascade_fullres");
  const PreprocessedStore store(data.dataset_work / "preprocessed" / "3d_fullres");
  for (const std::string& id : store.case_ids()) {
    const fs::path file = store_prior_file(prior_dir, id);
    ASSERT_TRUE(fs::exists(file)) << id;
    const NpyHeader header = read_npy_header(file);
    const auto& shape = store.stored_case(store.case_index(id)).shape_zyx();
    EXPECT_EQ(header.shape, (std::vector<std::int64_t>{1, shape[0], shape[1], shape[2]})) << id;
  }
  EXPECT_FALSE(fs::exists(data.dataset_work / "preprocessed" / "3d_cascade_fullres")) << "the cascade reuses 3d_fullres's store";

  // A fold whose checkpoint changed (sources.json no longer matches) has its cases predicted
  // again; the other fold's files are left as they are.
  {
    Json sources = read_json_file(prior_dir / "sources.json");
    ASSERT_TRUE(sources.contains("0") && sources.contains("1")) << sources.dump();
    const std::string first_fold_identity = sources["1"];
    sources["1"] = "another checkpoint";
    write_json_file(prior_dir / "sources.json", sources);
    const Json folds = read_json_file(data.dataset_work / "splits_final.json");
    const fs::path kept = store_prior_file(prior_dir, folds[0]["val"][0].get<std::string>());
    const fs::path redone = store_prior_file(prior_dir, folds[1]["val"][0].get<std::string>());
    const auto kept_time = fs::last_write_time(kept);
    std::ofstream(redone, std::ios::binary | std::ios::trunc) << "stale";
    CascadePriorOptions options;
    options.show_progress = false;
    ensure_previous_stage_predictions(data.dataset_work, read_plans(data.dataset_work / "plans.json"), "3d_cascade_fullres", store, options);
    EXPECT_EQ(read_npy_header(redone).shape.size(), 4u) << "fold 1's case predicted again";
    EXPECT_EQ(read_json_file(prior_dir / "sources.json")["1"], first_fold_identity);
    EXPECT_EQ(fs::last_write_time(kept), kept_time) << "fold 0's predictions were current";
  }

  // The checkpoint: image + 3 previous-stage channels in, the first stage named.
  const LoadedCheckpoint model = load_checkpoint(results / "3d_cascade_fullres" / "fold_0" / "checkpoint_final.pt");
  EXPECT_EQ(model.model.encoding.name(), encoding);
  EXPECT_EQ(model.model.previous_stage, "3d_lowres");
  EXPECT_EQ(model.model.prior_channels, 3);
  EXPECT_EQ(model.model.input_channels, 4);
  EXPECT_EQ(model.model.image_input_channels(), 1);
  EXPECT_TRUE(fs::exists(results / "3d_cascade_fullres" / "fold_0" / "validation" / "summary.json")) << "final validation ran";

  // Prediction runs both stages from the cascade's folder alone.
  const fs::path out = dir.path() / "predicted";
  const auto predicted = mlseg::testing::run_mlseg("predict -i " + (data.raw / "imagesTs").string() + " -o " + out.string() + " -m " +
                                                   (results / "3d_cascade_fullres").string() + " -f 0 --threads 1 -q");
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  EXPECT_FALSE(list_input_cases(data.raw / "imagesTs").empty());

  // What prediction feeds the cascade for a training case equals what training fed it: fold 0's
  // first stage predicted fold 0's validation cases.
  PredictOptions options;
  options.threads = 1;
  const PreviousStage previous = load_previous_stage(results / "3d_cascade_fullres", model.model, {"0"}, "final", options);
  const Json splits = read_json_file(data.dataset_work / "splits_final.json");
  const std::string id = splits[0]["val"][0];
  const Dataset dataset = load_dataset(data.raw);
  const auto found = std::find_if(dataset.training.begin(), dataset.training.end(), [&](const CaseFiles& c) { return c.case_id == id; });
  ASSERT_NE(found, dataset.training.end());
  InputCase input;
  input.case_id = id;
  input.images = found->images;
  const Image raw = read_input_case(input);
  const InferencePlan plan = inference_plan_from_plans(model.model.plans, model.model.configuration);
  const PreprocessedImage next = preprocess_image(id, raw, plan);
  const torch::Tensor full_input = cascade_input(previous, raw, next, id, 1);
  ASSERT_EQ(full_input.size(0), 4);
  PreprocessedStore attached(data.dataset_work / "preprocessed" / "3d_fullres");
  attached.attach_previous_stage(prior_dir, 3);
  const torch::Tensor trained = attached.stored_case(attached.case_index(id)).network_input();
  ASSERT_EQ(trained.sizes(), full_input.sizes());
  const double agreement = full_input.narrow(0, 1, 3).eq(trained.narrow(0, 1, 3)).to(torch::kDouble).mean().item<double>();
  EXPECT_GE(agreement, 0.999) << "the previous stage's channels at prediction and in training";
  EXPECT_LE((full_input.narrow(0, 0, 1) - trained.narrow(0, 0, 1)).abs().max().item<double>(), 1e-4);

  // Model selection scores the cascade like any configuration.
  FindBestConfigOptions selection_options;
  selection_options.work_dir = data.work.string();
  selection_options.threads = 1;
  selection_options.show_progress = false;
  const ModelSelection selection = find_best_configuration(data.raw, selection_options);
  std::vector<std::string> names;
  for (const auto& candidate : selection.candidates) names.push_back(candidate.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "3d_cascade_fullres"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "3d_lowres"), names.end());
}

// Overlapping channels as independent sigmoids: each first-stage channel thresholded on its own.
TEST(Cascade, TrainsOnCrossValidationPredictionsAndPredictsThroughBothStages) {
  train_and_predict_cascade(PhantomLabelFormat::bitmask, "sigmoid");
}

// Powerset: the first stage's channels are its argmax combination's.
TEST(Cascade, PowersetTrainsAndPredictsThroughBothStages) { train_and_predict_cascade(PhantomLabelFormat::bitmask, "powerset"); }

// Softmax (disjoint labels): the first stage's one-hot foreground classes, as nnU-Net's cascade.
TEST(Cascade, SoftmaxTrainsAndPredictsThroughBothStages) { train_and_predict_cascade(PhantomLabelFormat::label_map, "softmax"); }

}  // namespace
