// Prediction end to end: a phantom dataset planned and preprocessed by the library, a network
// trained for a few SGD steps on it and saved as a checkpoint, then `predict` in every format:
// exact geometry, lossless formats read back through the dataset model, the labelmap's reported
// loss, the predict → evaluate round trip, --continue, and input errors. Plus real-data geometry.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "mlseg/core/error.h"
#include "mlseg/evaluation/evaluate.h"
#include "mlseg/inference/export_prediction.h"
#include "mlseg/inference/predict.h"
#include "mlseg/inference/predict_case.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/synth/phantom.h"
#include "inference/phantom_model_support.h"
#include "test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr const char* kDatasetName = "Dataset900_Phantom";

/// Reads a prediction folder's case back through the dataset model, with the folder's dataset.json.
CaseLabels read_prediction(const fs::path& folder, const std::string& case_id) {
  Dataset dataset;
  dataset.root = folder;
  dataset.json = read_json_file(folder / "dataset.json");
  dataset.labels = parse_label_spec(dataset.json, (folder / "dataset.json").string());
  dataset.file_ending = dataset.json.value("file_ending", std::string());
  dataset.label_file_ending = dataset.file_ending;
  CaseFiles files;
  files.case_id = case_id;
  files.has_label = true;
  if (dataset.labels.format == LabelFormat::channel_masks) {
    files.label = folder / case_id;
    for (const auto& channel : dataset.labels.channels) files.channel_mask_files.push_back(folder / case_id / (channel.name + dataset.file_ending));
  } else {
    files.label = folder / (case_id + dataset.file_ending);
  }
  return read_case_labels(dataset, files);
}

void expect_same_geometry(const Geometry& a, const Geometry& b) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(a.spacing_zyx_mm[i], b.spacing_zyx_mm[i], 1e-6);
    EXPECT_NEAR(a.origin_zyx_mm[i], b.origin_zyx_mm[i], 1e-5);
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(a.direction_zyx[i][j], b.direction_zyx[i][j], 1e-6);
  }
}

class PredictPhantom : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new mlseg::testing::TempDir();
    PhantomOptions phantom;
    phantom.num_cases = 4;
    phantom.num_test_cases = 2;
    phantom.shape_zyx = {12, 24, 24};
    phantom.num_channels = 4;
    phantom.show_progress = false;
    phantom.threads = 1;
    raw_ = new fs::path(*dir_ / "raw" / kDatasetName);
    write_phantom_dataset(*raw_, phantom);
    PreprocessOptions preprocess;
    preprocess.work_dir = (*dir_ / "work").string();
    preprocess.show_progress = false;
    preprocess.threads = 2;
    ASSERT_TRUE(preprocess_dataset(*raw_, preprocess).ok());
    const fs::path dataset_work = *dir_ / "work" / kDatasetName;
    // The model is trained with sigmoid targets, whatever analyze recommended: a few SGD steps on
    // the preprocessed cases, so that it is not random.
    model_ = new ModelDescription(mlseg::testing::sigmoid_phantom_model(dataset_work, *raw_));
    const SegmentationNetwork network =
        mlseg::testing::train_phantom_network(*model_, dataset_work, {"phantom_0000", "phantom_0001"}, 25, &last_loss_);
    model_dir_ = new fs::path(dataset_work / "results" / "3d_fullres");
    save_checkpoint(*model_dir_ / "fold_0" / "checkpoint_final.pt", *network, *model_, Json::object(), nullptr);
  }
  static void TearDownTestSuite() {
    delete model_dir_;
    delete model_;
    delete raw_;
    delete dir_;
  }

  static PredictFolderOptions quiet_options(PredictionFormat format) {
    PredictFolderOptions options;
    options.format = format;
    options.show_progress = false;
    options.threads = 2;
    options.device = "cpu";
    options.precision = "fp32";  // the tests compare with predict_case, which runs float32 (auto is bf16 on some CPUs)
    return options;
  }

  static mlseg::testing::TempDir* dir_;
  static fs::path* raw_;
  static fs::path* model_dir_;
  static ModelDescription* model_;
  static double last_loss_;
};

mlseg::testing::TempDir* PredictPhantom::dir_ = nullptr;
fs::path* PredictPhantom::raw_ = nullptr;
fs::path* PredictPhantom::model_dir_ = nullptr;
ModelDescription* PredictPhantom::model_ = nullptr;
double PredictPhantom::last_loss_ = 0;

TEST_F(PredictPhantom, EveryFormatReadsBackThroughTheDatasetModelWithTheInputsGeometry) {
  const std::vector<LoadedCheckpoint> models{load_checkpoint(*model_dir_ / "fold_0" / "checkpoint_final.pt")};
  const auto cases = list_input_cases(*raw_ / "imagesTs", 1);
  ASSERT_EQ(cases.size(), 2u);
  const Image image = read_image(cases[0].images[0]);
  PredictOptions predict;
  predict.use_mirroring = false;
  const PredictedCase expected = predict_case(models, image, predict, cases[0].case_id);
  ASSERT_EQ(expected.probabilities.sizes(), (std::vector<std::int64_t>{4, 12, 24, 24}));
  EXPECT_GT(decode_channels(expected.code)[0].sum().item<std::int64_t>(), 0) << "the trained model finds the body";

  for (auto format : {PredictionFormat::bitmask, PredictionFormat::multihot4d, PredictionFormat::per_channel, PredictionFormat::labelmap}) {
    SCOPED_TRACE(to_string(format));
    const fs::path out = *dir_ / ("pred_" + to_string(format));
    PredictFolderOptions options = quiet_options(format);
    options.predict.use_mirroring = false;
    options.save_probabilities = format == PredictionFormat::bitmask;
    const PredictRun run = predict_folder(*raw_ / "imagesTs", out, *model_dir_, options);
    ASSERT_TRUE(run.ok()) << format_predict_report(run);
    EXPECT_EQ(run.predicted, 2);
    const CaseLabels back = read_prediction(out, cases[0].case_id);
    expect_same_geometry(back.geometry, image.geometry);
    ASSERT_EQ(back.code.shape_zyx(), image.shape_zyx());
    if (format != PredictionFormat::labelmap) {
      EXPECT_TRUE(torch::equal(decode_channels(back.code), decode_channels(expected.code)));
    }
    if (options.save_probabilities) {
      const torch::Tensor probabilities = read_npy(out / (cases[0].case_id + "_probabilities.npy"));
      EXPECT_TRUE(torch::allclose(probabilities, expected.probabilities, 1e-5, 1e-6));
    }
  }
}

TEST_F(PredictPhantom, OverlapsSurviveLosslessFormatsAndTheLabelmapCountsWhatItLost) {
  // The phantom's true channels (nested and partly overlapping) as a "prediction".
  PhantomOptions phantom;
  phantom.shape_zyx = {12, 24, 24};
  phantom.num_channels = 4;
  const PhantomCase truth = make_phantom_case(0, phantom);
  PredictedCase prediction;
  prediction.case_id = "overlap_case";
  prediction.code = truth.code;
  prediction.geometry = truth.image.geometry;
  prediction.channel_names = model_->channel_names;
  prediction.probabilities = decode_channels(truth.code).to(torch::kFloat);
  const torch::Tensor masks = decode_channels(truth.code);
  ASSERT_GT((masks.sum(0) >= 2).sum().item<std::int64_t>(), 0) << "the phantom has overlapping voxels";
  for (auto format : {PredictionFormat::bitmask, PredictionFormat::multihot4d, PredictionFormat::per_channel}) {
    SCOPED_TRACE(to_string(format));
    const fs::path out = *dir_ / ("overlap_" + to_string(format));
    ExportOptions options;
    options.format = format;
    fs::create_directories(out);
    std::ofstream(out / "dataset.json") << prediction_dataset_json(*model_, options).dump(2);
    const ExportResult result = export_prediction(prediction, out, *model_, options);
    EXPECT_EQ(result.voxels_lost_overlap, 0);
    const CaseLabels back = read_prediction(out, prediction.case_id);
    EXPECT_TRUE(torch::equal(decode_channels(back.code), masks));
    expect_same_geometry(back.geometry, prediction.geometry);
  }
  // labelmap: the region dataset's labels; whatever the written label cannot represent is counted.
  ExportOptions options;
  options.format = PredictionFormat::labelmap;
  const fs::path out = *dir_ / "overlap_labelmap";
  fs::create_directories(out);
  std::ofstream(out / "dataset.json") << prediction_dataset_json(*model_, options).dump(2);
  const ExportResult result = export_prediction(prediction, out, *model_, options);
  const CaseLabels back = read_prediction(out, prediction.case_id);
  const std::int64_t differing = (decode_channels(back.code) != masks).any(0).sum().item<std::int64_t>();
  EXPECT_EQ(result.voxels_lost_overlap, differing);
}

TEST(LabelmapCollapse, OverwritesInChannelOrderLikeNnUNetAndCountsLostVoxels) {
  // Regions a = {1, 3}, b = {2, 3} with regions_class_order (1, 2): label 3 (a and b) is never
  // written, so every a+b voxel loses channel a.
  Json json;
  json["labels"] = Json::object({{"background", 0}, {"a", Json::array({1, 3})}, {"b", Json::array({2, 3})}});
  json["regions_class_order"] = Json::array({1, 2});
  const LabelSpec spec = parse_label_spec(json, "test");
  torch::Tensor masks = torch::zeros({2, 1, 2, 3}, torch::kUInt8);
  masks[0][0][0][0] = 1;                        // a only → 1
  masks[1][0][0][1] = 1;                        // b only → 2
  masks[0][0][1][0] = 1, masks[1][0][1][0] = 1;  // a + b → 2 (lost a)
  masks[0][0][1][1] = 1, masks[1][0][1][1] = 1;  // a + b → 2 (lost a)
  std::int64_t lost = -1;
  const torch::Tensor label = collapse_to_label_map(code_from_masks(masks), spec, &lost);
  EXPECT_EQ(label[0][0][0][0].item<std::int64_t>(), 1);
  EXPECT_EQ(label[0][0][0][1].item<std::int64_t>(), 2);
  EXPECT_EQ(label[0][0][1][0].item<std::int64_t>(), 2);
  EXPECT_EQ(label[0][0][0][2].item<std::int64_t>(), 0);
  EXPECT_EQ(lost, 2);
  // With regions_class_order (1, 3) the a+b voxels get label 3, which holds both, but so does
  // the b-only voxel, which thereby gains a: one voxel changed.
  json["regions_class_order"] = Json::array({1, 3});
  std::int64_t lost_other = -1;
  const torch::Tensor other = collapse_to_label_map(code_from_masks(masks), parse_label_spec(json, "test"), &lost_other);
  EXPECT_EQ(other[0][0][1][0].item<std::int64_t>(), 3);
  EXPECT_EQ(lost_other, 1);
}

TEST_F(PredictPhantom, PredictThenEvaluateRoundTrip) {
  // The training cases (they have references), in the dataset's own label format.
  const fs::path out = *dir_ / "pred_train_labelmap";
  PredictFolderOptions options = quiet_options(PredictionFormat::labelmap);
  options.predict.tile_batch = 2;
  options.predict.step_size = 1.0;  // mirroring on (the default), fewer tiles
  const PredictRun run = predict_folder(*raw_ / "imagesTr", out, *model_dir_, options);
  ASSERT_TRUE(run.ok()) << format_predict_report(run);
  EXPECT_EQ(run.predicted, 4);
  EvaluateOptions evaluate;
  evaluate.dataset_json = *raw_ / "dataset.json";
  evaluate.show_progress = false;
  evaluate.metrics = "dice";
  const EvaluationResult result = evaluate_folders(*raw_ / "labelsTr", out, evaluate);
  ASSERT_EQ(result.cases.size(), 4u);
  ASSERT_FALSE(result.channels.empty());
  ASSERT_TRUE(result.channels[0].pooled.dice.defined());
  EXPECT_GT(result.channels[0].pooled.dice.value(), 0.5) << "body after " << 25 << " SGD steps (last loss " << last_loss_ << ")";

  // The bitmask output evaluates against itself read through its own dataset.json: Dice 1.
  const fs::path bitmask = *dir_ / "pred_train_bitmask";
  PredictFolderOptions bitmask_options = quiet_options(PredictionFormat::bitmask);
  bitmask_options.predict.use_mirroring = false;
  ASSERT_TRUE(predict_folder(*raw_ / "imagesTr", bitmask, *model_dir_, bitmask_options).ok());
  EvaluateOptions self = evaluate;
  self.dataset_json = bitmask / "dataset.json";
  const EvaluationResult identical = evaluate_folders(bitmask, bitmask, self);
  for (const auto& channel : identical.channels) {
    if (channel.pooled.dice.defined()) {
      EXPECT_DOUBLE_EQ(channel.pooled.dice.value(), 1.0);
    }
  }
}

TEST_F(PredictPhantom, ContinueSkipsFinishedCasesAndTheCliPredicts) {
  const fs::path out = *dir_ / "pred_cli";
  const std::string base = "predict -i '" + (*raw_ / "imagesTs").string() + "' -o '" + out.string() + "' -m '" +
                           model_dir_->string() + "' -f 0 --disable-tta --device cpu --threads 2 -q";
  const auto first = mlseg::testing::run_mlseg(base);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto cases = list_input_cases(*raw_ / "imagesTs", 1);
  for (const auto& c : cases) EXPECT_TRUE(fs::exists(out / (c.case_id + ".nii.gz"))) << c.case_id;
  EXPECT_TRUE(fs::exists(out / "dataset.json"));
  const auto second = mlseg::testing::run_mlseg(base + " --continue --json");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  const Json json = Json::parse(second.stdout_text);
  EXPECT_EQ(json["skipped"].get<int>(), 2);
  EXPECT_EQ(json["predicted"].get<int>(), 0);
  const auto missing = mlseg::testing::run_mlseg("predict -i '" + (*raw_ / "imagesTs").string() + "' -o '" + out.string() +
                                                 "' -m '" + model_dir_->string() + "' -f 3 -q");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("fold 3"), std::string::npos) << missing.output;
}

TEST_F(PredictPhantom, InputChannelsAreCheckedAgainstTheModel) {
  mlseg::testing::TempDir input;
  const Image image = read_image(list_input_cases(*raw_ / "imagesTs", 1).front().images.front());
  write_image(image, input / "two_0000.nii.gz");
  write_image(image, input / "two_0001.nii.gz");
  try {
    list_input_cases(input.path(), 1);
    FAIL() << "two channel files for a one-channel model must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 channel file(s)"), std::string::npos) << e.what();
  }
  mlseg::testing::TempDir gap;
  write_image(image, gap / "gap_0000.nii.gz");
  write_image(image, gap / "gap_0002.nii.gz");
  EXPECT_THROW(list_input_cases(gap.path(), 0), Error);
  // A single file selects its case.
  const auto single = list_input_cases(input / "two_0001.nii.gz", 2);
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].images.size(), 2u);
}

// A hand-made plans.json for a tiny 3D network at `spacing`, `input_channels` zscore channels.
ModelDescription tiny_model(const std::array<double, 3>& spacing, int input_channels = 1) {
  Json arch;
  arch["n_stages"] = 2;
  arch["features_per_stage"] = {4, 8};
  arch["kernel_sizes"] = Json::array({Json::array({3, 3, 3}), Json::array({3, 3, 3})});
  arch["strides"] = Json::array({Json::array({1, 1, 1}), Json::array({2, 2, 2})});
  arch["n_conv_per_stage"] = {1, 1};
  arch["n_conv_per_stage_decoder"] = {1};
  arch["conv_op"] = "torch.nn.modules.conv.Conv3d";
  Json config;
  config["patch_size"] = {16, 16, 16};
  config["spacing"] = spacing;
  config["normalization_schemes"] = std::vector<std::string>(static_cast<std::size_t>(input_channels), "zscore");
  config["use_mask_for_norm"] = std::vector<bool>(static_cast<std::size_t>(input_channels), false);
  config["architecture"] = {{"arch_kwargs", arch}};
  config["batch_size"] = 2;
  Json plans;
  plans["channel_names"] = {"a", "b"};
  plans["transpose_forward"] = {0, 1, 2};
  plans["transpose_backward"] = {0, 1, 2};
  plans["configurations"] = {{"3d_fullres", config}};
  plans["label_encoding"] = "sigmoid";
  ModelDescription model;
  model.plans = plans_from_json(plans, "tiny_model plans");
  model.configuration = "3d_fullres";
  model.encoding = LabelEncoding::sigmoid(2);
  model.channel_names = {"a", "b"};
  model.input_channels = input_channels;
  model.num_outputs = 2;
  model.dataset_json = Json{{"file_ending", ".nii.gz"}};
  return model;
}

// Several modalities per case (BraTS: FLAIR, T1c): the channel files are stacked in channel order,
// and a channel file on another grid fails that case with a message naming the file.
TEST(PredictMultiModal, ChannelFilesAreStackedAndMustShareTheGrid) {
  mlseg::testing::TempDir dir;
  Image image;
  image.data = torch::rand({1, 10, 20, 18});
  image.geometry.spacing_zyx_mm = {2.0, 1.0, 1.0};
  image.geometry.origin_zyx_mm = {3.0, -4.0, 5.0};
  const fs::path input = dir / "imagesTs";
  fs::create_directories(input);
  write_image(image, input / "good_0000.nii.gz");
  Image second = image;
  second.data = image.data * 2 + 1;
  write_image(second, input / "good_0001.nii.gz");
  write_image(image, input / "bad_0000.nii.gz");
  Image other_grid = image;
  other_grid.data = torch::rand({1, 10, 20, 17});
  write_image(other_grid, input / "bad_0001.nii.gz");

  const ModelDescription model = tiny_model({2.0, 1.0, 1.0}, 2);
  torch::manual_seed(3);
  SegmentationNetwork network = build_network(model, false);
  const fs::path model_dir = dir / "model";
  save_checkpoint(model_dir / "fold_0" / "checkpoint_final.pt", *network, model, Json::object(), nullptr);
  PredictFolderOptions options;
  options.show_progress = false;
  options.device = "cpu";
  options.predict.use_mirroring = false;
  const PredictRun run = predict_folder(input, dir / "out", model_dir, options);
  EXPECT_EQ(run.predicted, 1) << format_predict_report(run);
  ASSERT_EQ(run.failures.size(), 1u) << format_predict_report(run);
  const std::string report = format_predict_report(run);
  EXPECT_NE(report.find("bad"), std::string::npos) << report;
  EXPECT_NE(report.find("another grid"), std::string::npos) << report;
  const ImageHeader written = read_image_header(dir / "out" / "good.nii.gz");
  EXPECT_EQ(written.shape_zyx, (std::array<std::int64_t, 3>{10, 20, 18}));
  EXPECT_EQ(written.geometry.origin_zyx_mm, image.geometry.origin_zyx_mm);
}

TEST(PredictRealData, OutputGeometryEqualsTheInputsExactly) {
  MLSEG_REQUIRE_SHARED_DATA();
  const fs::path file = mlseg::testing::shared_data_dir() / "Dataset004_Hippocampus" / "imagesTr" / "hippocampus_001_0000.nii.gz";
  if (!fs::exists(file)) GTEST_SKIP() << file << " not found";
  const Image image = read_image(file);
  // A coarser target spacing than the image's, so that both resampling directions run.
  std::array<double, 3> spacing = image.geometry.spacing_zyx_mm;
  for (double& s : spacing) s *= 1.7;
  const ModelDescription model = tiny_model(spacing);
  torch::manual_seed(5);
  const SegmentationNetwork network = build_network(model, false);
  PredictOptions options;
  options.use_mirroring = false;
  const PredictedCase predicted = predict_case({network}, model, image, options, "hippocampus_001");
  EXPECT_EQ(predicted.probabilities.size(0), 2);
  EXPECT_EQ(predicted.code.shape_zyx(), image.shape_zyx());
  mlseg::testing::TempDir out;
  for (auto format : {PredictionFormat::bitmask, PredictionFormat::multihot4d, PredictionFormat::labelmap}) {
    ExportOptions export_options;
    export_options.format = format;
    const fs::path folder = out / to_string(format);
    export_prediction(predicted, folder, model, export_options);
    const ImageHeader header = read_image_header(folder / "hippocampus_001.nii.gz");
    const ImageHeader input = read_image_header(file);
    EXPECT_EQ(header.shape_zyx, input.shape_zyx);
    EXPECT_EQ(header.geometry.spacing_zyx_mm, input.geometry.spacing_zyx_mm);
    EXPECT_EQ(header.geometry.origin_zyx_mm, input.geometry.origin_zyx_mm);
    EXPECT_EQ(header.geometry.direction_zyx, input.geometry.direction_zyx);
  }
}

}  // namespace
