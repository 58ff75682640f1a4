// The slab path of `mlseg predict` (--memory-budget-gb; slab_prediction.h, memory_plan.h) gives
// the whole-volume path's result: the sliding window's rows (bitwise), the way back to the
// original grid row by row (up to float rounding, 1e-6), and whole predictions (written codes equal) of sigmoid and softmax models resampled back anisotropically,
// with and without --save-probabilities.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "mlseg/core/error.h"
#include "mlseg/inference/export_prediction.h"
#include "mlseg/inference/memory_plan.h"
#include "mlseg/inference/predict.h"
#include "mlseg/inference/slab_prediction.h"
#include "mlseg/inference/sliding_window_rows.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// The slab path's probabilities against the whole volume's (the logits are bitwise equal).
constexpr float kProbabilityTolerance = 1e-6f;

// Rows as the sink hands them, checked to come in order and each once.
torch::Tensor collect_rows(const std::function<void(const LogitRowsSink&)>& run, std::int64_t total_rows) {
  std::vector<torch::Tensor> rows;
  std::int64_t next = 0;
  run([&](std::int64_t z_begin, const torch::Tensor& logits) {
    EXPECT_EQ(z_begin, next);
    next += logits.size(1);
    rows.push_back(logits.clone());
  });
  EXPECT_EQ(next, total_rows);
  return torch::cat(rows, 1);
}

TEST(SlidingWindowRows, EqualTheWholeVolumesLogitsWithMirroringBatchesAndPadding) {
  torch::manual_seed(3);
  const torch::Tensor image = torch::randn({2, 11, 9, 13});
  const torch::Tensor kernel = torch::randn({3, 2, 3, 3, 3});
  // Position-dependent (a convolution with zero padding), so mirroring and tile borders matter.
  const TileForward forward = [kernel](const torch::Tensor& tiles) { return torch::conv3d(tiles, kernel, {}, 1, 1).tanh() * 3; };
  for (const std::vector<std::int64_t>& patch : {std::vector<std::int64_t>{4, 6, 8}, std::vector<std::int64_t>{5, 12, 8}}) {
    SCOPED_TRACE(patch[1]);
    SlidingWindowOptions options(patch);
    options.mirror_axes({0, 2}).tile_batch(3);
    const torch::Tensor whole = sliding_window_logits({forward, forward}, image, options);
    for (std::int64_t rows_per_call : {1, 2, 7}) {
      const torch::Tensor rows = collect_rows(
          [&](const LogitRowsSink& sink) { sliding_window_logit_rows({forward, forward}, image, options, rows_per_call, sink); }, 11);
      EXPECT_TRUE(torch::equal(rows, whole)) << "rows per call " << rows_per_call << ", largest difference "
                                             << (rows - whole).abs().max().item<float>();
    }
  }
}

/// A case's properties as preprocessing leaves them: cropped on every axis, resampled to `planned`.
CaseProperties properties_for(const std::array<std::int64_t, 3>& planned, const std::array<double, 3>& original_spacing,
                              const std::array<double, 3>& target_spacing) {
  CaseProperties p;
  p.case_id = "rows";
  p.original_shape_zyx = {15, 12, 14};
  p.crop_begin = {2, 1, 0};
  p.crop_end = {13, 12, 11};
  p.shape_after_crop = {11, 11, 11};
  p.spacing_after_crop_mm = original_spacing;
  p.spacing_mm = target_spacing;
  p.shape_after_resample = planned;
  return p;
}

TEST(ProbabilityRows, EqualTheWholeVolumesWayBackLinearAndAnisotropic) {
  torch::manual_seed(4);
  struct Case {
    LabelEncoding encoding;
    CaseProperties properties;
  };
  // Linear along every axis (z grows), and z the anisotropic axis (nearest, z shrinks) with y kept.
  const std::vector<Case> cases{{LabelEncoding::sigmoid(3), properties_for({17, 8, 13}, {1.5, 1.0, 1.0}, {1.0, 1.4, 0.85})},
                                {LabelEncoding::softmax(3), properties_for({5, 11, 9}, {1.0, 1.0, 1.0}, {4.0, 1.0, 1.3})}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.encoding.name());
    const auto& planned = c.properties.shape_after_resample;
    const torch::Tensor logits = torch::randn({c.encoding.num_outputs(), planned[0], planned[1], planned[2]}) * 4;
    const torch::Tensor whole = logits_to_original_probabilities(logits, c.properties, c.encoding);
    for (std::int64_t rows_per_call : {1, 3}) {
      std::vector<torch::Tensor> rows;
      std::int64_t next = 0;
      ProbabilityRows stream(c.properties, c.encoding, kDefaultAnisotropyThreshold, 1, rows_per_call,
                             [&](std::int64_t row_begin, const torch::Tensor& probabilities) {
                               EXPECT_EQ(row_begin, next);
                               EXPECT_LE(probabilities.size(1), rows_per_call);
                               next += probabilities.size(1);
                               rows.push_back(probabilities.clone());
                             });
      // Pushed in uneven pieces, as the sliding window hands them over.
      for (std::int64_t z = 0, piece = 1; z < planned[0]; z += piece, piece = piece % 3 + 1) {
        stream.push(z, logits.slice(1, z, std::min(planned[0], z + piece)));
      }
      stream.finish();
      ASSERT_EQ(next, 15);
      const torch::Tensor streamed = torch::cat(rows, 1);
      // Float rounding only: resample_image's in-plane passes and softmax vectorise differently
      // over fewer rows (measured: 6e-8).
      ASSERT_EQ(streamed.sizes(), whole.sizes());
      EXPECT_LE((streamed - whole).abs().max().item<float>(), kProbabilityTolerance);
    }
  }
}

TEST(ProbabilityRows, RefusesRowsOutOfOrder) {
  const CaseProperties p = properties_for({11, 11, 11}, {1.0, 1.0, 1.0}, {1.0, 1.0, 1.0});
  const LabelEncoding encoding = LabelEncoding::sigmoid(2);
  ProbabilityRows stream(p, encoding, kDefaultAnisotropyThreshold, 1, 4, [](std::int64_t, const torch::Tensor&) {});
  EXPECT_THROW(stream.push(3, torch::zeros({2, 2, 11, 11})), Error);
  stream.push(0, torch::zeros({2, 2, 11, 11}));
  EXPECT_THROW(stream.finish(), Error);
}

class SlabPredictionPhantom : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new mlseg::testing::TempDir();
    PhantomOptions phantom;
    phantom.num_cases = 2;
    phantom.num_test_cases = 1;
    phantom.shape_zyx = {24, 20, 20};
    phantom.num_channels = 4;
    phantom.show_progress = false;
    phantom.threads = 1;
    raw_ = new fs::path(*dir_ / "raw" / "Dataset900_Phantom");
    write_phantom_dataset(*raw_, phantom);
    // Zero borders, so that the crop box is smaller than the image on z and y.
    for (const auto& entry : fs::directory_iterator(*raw_ / "imagesTs")) {
      Image image = read_image(entry.path());
      image.data.slice(1, 0, 3).zero_();
      image.data.slice(1, 21, 24).zero_();
      image.data.slice(2, 0, 2).zero_();
      write_image(image, entry.path());
    }
    PreprocessOptions preprocess;
    preprocess.work_dir = (*dir_ / "work").string();
    preprocess.show_progress = false;
    preprocess.threads = 1;
    ASSERT_TRUE(preprocess_dataset(*raw_, preprocess).ok());
    plans_ = new Json(read_json_file(*dir_ / "work" / "Dataset900_Phantom" / "plans.json"));
  }
  static void TearDownTestSuite() {
    delete plans_;
    delete raw_;
    delete dir_;
  }

  /// A model folder with a small untrained network of `kind` whose plan resamples to `spacing`
  /// (the phantom's is 2 x 1 x 1 mm): tiles of 4 x 8 x 8, so a case takes several rows of tiles.
  static fs::path make_model(const std::string& name, EncodingKind kind, const std::vector<double>& spacing) {
    Json plans = *plans_;
    Json& configuration = plans["configurations"]["3d_fullres"];
    configuration["spacing"] = spacing;
    configuration["patch_size"] = {4, 8, 8};
    Json& arch = configuration["architecture"]["arch_kwargs"];
    arch["n_stages"] = 3;
    arch["features_per_stage"] = {4, 8, 8};
    arch["kernel_sizes"] = Json::parse("[[1, 3, 3], [3, 3, 3], [3, 3, 3]]");
    arch["strides"] = Json::parse("[[1, 1, 1], [1, 2, 2], [2, 2, 2]]");
    arch["n_conv_per_stage"] = {1, 1, 1};
    arch["n_conv_per_stage_decoder"] = {1, 1};
    ModelDescription model;
    model.configuration = "3d_fullres";
    model.channel_names = plans.at("channel_names").get<std::vector<std::string>>();
    model.encoding = LabelEncoding::of_kind(kind, static_cast<int>(model.channel_names.size()));
    model.encoding.write_json(plans, model.channel_names);
    model.plans = plans_from_json(plans, name + " plans");
    model.input_channels = 1;
    model.num_outputs = model.encoding.num_outputs();
    model.dataset_json = read_json_file(*raw_ / "dataset.json");
    model.mirror_axes = {0, 1, 2};
    torch::manual_seed(7);
    SegmentationNetwork network = build_network(model, /*deep_supervision=*/false);
    const fs::path model_dir = *dir_ / name;
    save_checkpoint(model_dir / "fold_0" / "checkpoint_final.pt", *network, model, Json::object(), nullptr);
    return model_dir;
  }

  static PredictRun predict(const fs::path& model_dir, const fs::path& out, double budget_gb, bool save_probabilities,
                            std::optional<PredictionFormat> format = std::nullopt) {
    PredictFolderOptions options;
    options.format = format;
    options.show_progress = false;
    options.threads = 2;
    options.device = "cpu";
    options.precision = "fp32";
    options.memory_budget_gb = budget_gb;
    options.save_probabilities = save_probabilities;
    options.predict.use_mirroring = true;
    return predict_folder(*raw_ / "imagesTs", out, model_dir, options);
  }

  /// Both paths on the same model; every written image equal, probabilities equal.
  static void expect_paths_agree(const fs::path& model_dir, const std::string& tag, bool save_probabilities,
                                 std::optional<PredictionFormat> format = std::nullopt) {
    const fs::path whole_dir = *dir_ / (tag + "_whole"), slab_dir = *dir_ / (tag + "_slabs");
    const PredictRun whole = predict(model_dir, whole_dir, 1e6, save_probabilities, format);
    const PredictRun slabs = predict(model_dir, slab_dir, 1e-6, save_probabilities, format);
    ASSERT_TRUE(whole.ok()) << format_predict_report(whole);
    ASSERT_TRUE(slabs.ok()) << format_predict_report(slabs);
    ASSERT_EQ(whole.cases.size(), 1u);
    ASSERT_EQ(slabs.cases.size(), 1u);
    EXPECT_EQ(whole.cases[0].strategy, "whole volume");
    EXPECT_EQ(slabs.cases[0].strategy, "z slabs");
    EXPECT_EQ(whole.voxels_lost_overlap, slabs.voxels_lost_overlap);
    ASSERT_EQ(whole.cases[0].files.size(), slabs.cases[0].files.size());
    std::int64_t foreground = 0;
    for (std::size_t i = 0; i < whole.cases[0].files.size(); ++i) {
      const fs::path a = whole.cases[0].files[i], b = slabs.cases[0].files[i];
      SCOPED_TRACE(a.filename().string());
      EXPECT_EQ(a.lexically_relative(whole_dir), b.lexically_relative(slab_dir));
      if (a.extension() == ".npy") {
        const torch::Tensor pa = read_npy(a), pb = read_npy(b);
        ASSERT_EQ(pa.sizes(), pb.sizes());
        EXPECT_LE((pa - pb).abs().max().item<float>(), kProbabilityTolerance);
      } else {
        const Image ia = read_image(a), ib = read_image(b);
        EXPECT_TRUE(torch::equal(ia.data, ib.data));
        foreground += (ia.data != 0).sum().item<std::int64_t>();
      }
    }
    EXPECT_GT(foreground, 0) << "the untrained network predicts something";
  }

  static mlseg::testing::TempDir* dir_;
  static fs::path* raw_;
  static Json* plans_;
};

mlseg::testing::TempDir* SlabPredictionPhantom::dir_ = nullptr;
fs::path* SlabPredictionPhantom::raw_ = nullptr;
Json* SlabPredictionPhantom::plans_ = nullptr;

TEST_F(SlabPredictionPhantom, SigmoidSlabsEqualTheWholeVolumeResampledBackAnisotropically) {
  // 3.5 mm planned z against the image's 2 mm: z is the anisotropic axis (nearest on the way back).
  const fs::path model = make_model("sigmoid_model", EncodingKind::sigmoid, {3.5, 0.9, 1.2});
  expect_paths_agree(model, "sigmoid", false);
  expect_paths_agree(model, "sigmoid_probabilities", true);
  expect_paths_agree(model, "sigmoid_per_channel", false, PredictionFormat::per_channel);
}

TEST_F(SlabPredictionPhantom, SoftmaxSlabsEqualTheWholeVolumeResampledBackLinearly) {
  const fs::path model = make_model("softmax_model", EncodingKind::softmax, {1.5, 1.1, 0.8});
  expect_paths_agree(model, "softmax", false);
  expect_paths_agree(model, "softmax_probabilities", true);
}

TEST_F(SlabPredictionPhantom, TheSlabPathRefusesNiftiProbabilitiesNamingTheFix) {
  const fs::path model = make_model("nifti_model", EncodingKind::sigmoid, {2.0, 1.0, 1.0});
  PredictFolderOptions options;
  options.show_progress = false;
  options.threads = 1;
  options.memory_budget_gb = 1e-6;
  options.save_probabilities = true;
  options.probabilities_format = ProbabilitiesFormat::nifti;
  const PredictRun run = predict_folder(*raw_ / "imagesTs", *dir_ / "nifti_out", model, options);
  ASSERT_EQ(run.failures.size(), 1u);
  EXPECT_NE(run.failures[0].message.find("--probabilities-format npy"), std::string::npos) << run.failures[0].message;
}

TEST(PerChannelExport, WritesEachChannelOfAWideCodeOneAtATime) {
  // 70 channels: two 64-bit words, channel 63 in the first word's sign bit.
  const int channels = 70;
  torch::manual_seed(5);
  CodeVolume code = empty_code_volume({3, 4, 5}, channels);
  code.words.copy_(torch::randint(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(), code.words.sizes(),
                                  torch::kLong));
  code.words[1].bitwise_and_((std::int64_t{1} << (channels - 64)) - 1);  // no bits beyond the channels (nor the ignore flag)
  ModelDescription model;
  for (int c = 0; c < channels; ++c) model.channel_names.push_back("channel_" + std::to_string(c));
  model.encoding = LabelEncoding::sigmoid(channels);
  model.dataset_json = {{"file_ending", ".nii.gz"}};
  PredictedCase prediction;
  prediction.case_id = "wide";
  prediction.code = code;
  prediction.channel_names = model.channel_names;
  prediction.geometry.spacing_zyx_mm = {1.0, 1.0, 1.0};
  const mlseg::testing::TempDir dir;
  ExportOptions options;
  options.format = PredictionFormat::per_channel;
  const ExportResult result = export_prediction(prediction, dir.path(), model, options);
  ASSERT_EQ(result.files.size(), static_cast<std::size_t>(channels));
  const torch::Tensor masks = decode_channels(code);
  for (int c : {0, 1, 62, 63, 64, 69}) {
    SCOPED_TRACE(c);
    EXPECT_TRUE(torch::equal(read_image(result.files[static_cast<std::size_t>(c)]).data.to(torch::kUInt8), masks.slice(0, c, c + 1)));
  }
}

// A case neither cropped nor resampled (the plan's spacing is the image's).
CaseProperties uncropped_case(const std::string& id, const std::array<std::int64_t, 3>& shape_zyx) {
  CaseProperties p;
  p.case_id = id;
  p.original_shape_zyx = shape_zyx;
  p.shape_after_crop = shape_zyx;
  p.shape_after_resample = shape_zyx;
  return p;
}

TEST(CaseMemoryPlan, ChoosesSlabsForAWholeBodyCtWith117ChannelsAndFitsTwelveGb) {
  // 512 x 512 x 600 at the plan's spacing, 117 sigmoid channels, tiles 32 x 128 x 128.
  const CaseProperties p = uncropped_case("ct", {600, 512, 512});
  ModelDescription model;
  model.encoding = LabelEncoding::sigmoid(117);
  model.input_channels = 1;
  ExportOptions export_options;
  export_options.format = PredictionFormat::per_channel;
  const CaseMemoryPlan plan = plan_case_memory(p, model, {32, 128, 128}, export_options, 12.0);
  EXPECT_EQ(plan.strategy, PredictStrategy::slabs);
  EXPECT_GT(plan.whole_volume_gb, 100.0);  // 117 x 157 M voxels x 4 bytes, twice and more
  EXPECT_LT(plan.slabs_gb, 12.0);
  EXPECT_NE(plan.describe().find("z slabs"), std::string::npos);
  // multihot4d: the 4D volume alone (18 GB) is over the budget: refused, naming --format per-channel.
  export_options.format = PredictionFormat::multihot4d;
  try {
    plan_case_memory(p, model, {32, 128, 128}, export_options, 12.0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("per-channel"), std::string::npos) << e.what();
  }
  // Within a budget of 1000 GB the slab path still saves over 100 GB: slabs.
  const CaseMemoryPlan roomy = plan_case_memory(p, model, {32, 128, 128}, export_options, 1000.0);
  EXPECT_EQ(roomy.strategy, PredictStrategy::slabs);
  EXPECT_NE(roomy.describe().find("slabs save"), std::string::npos) << roomy.describe();
  // ...unless the slab path cannot write what was asked (NIfTI probabilities): the whole volume.
  export_options.save_probabilities = true;
  export_options.probabilities_format = ProbabilitiesFormat::nifti;
  EXPECT_EQ(plan_case_memory(p, model, {32, 128, 128}, export_options, 1000.0).strategy, PredictStrategy::whole_volume);
}

TEST(CaseMemoryPlan, KeepsTheWholeVolumeForASmallCaseAndTakesSlabsForAThinWideCt) {
  ModelDescription model;
  model.input_channels = 1;
  ExportOptions export_options;
  const CaseProperties small = uncropped_case("hippocampus", {36, 50, 35});  // both estimates are the process itself
  model.encoding = LabelEncoding::softmax(2);
  const CaseMemoryPlan kept = plan_case_memory(small, model, {40, 56, 40}, export_options, 8.0);
  EXPECT_EQ(kept.strategy, PredictStrategy::whole_volume) << kept.describe();
  EXPECT_NE(kept.describe().find("fits the budget"), std::string::npos) << kept.describe();
  // bench/memory's 512 x 512 x 32 CT with 117 channels fits 16 GB whole (about 12 GB), but the
  // slabs need about 5 GB and were faster there (13 s against 21 s).
  const CaseProperties ct = uncropped_case("ct32", {32, 512, 512});
  model.encoding = LabelEncoding::sigmoid(117);
  const CaseMemoryPlan thin = plan_case_memory(ct, model, {32, 128, 128}, export_options, 16.0);
  EXPECT_LE(thin.whole_volume_gb, 16.0);
  EXPECT_EQ(thin.strategy, PredictStrategy::slabs) << thin.describe();
}

}  // namespace
