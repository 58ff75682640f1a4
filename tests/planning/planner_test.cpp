// Planner outputs for synthetic fingerprints, with the expected numbers worked out by hand from
// nnU-Net v2's rules (README "mlseg plan").
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "mlseg/core/error.h"

#include "mlseg/planning/network_topology.h"
#include "mlseg/planning/normalization_choice.h"
#include "mlseg/planning/planner.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/planning/plans_json.h"
#include "mlseg/planning/validation_coverage.h"

namespace mlseg {
namespace {

using Shape = std::vector<std::int64_t>;
using Json = nlohmann::ordered_json;

PlanningInput synthetic(int cases, std::array<double, 3> spacing, std::array<std::int64_t, 3> shape,
                        std::vector<std::string> image_channels, int data_channels, int label_channels,
                        const std::string& encoding) {
  PlanningInput input;
  input.dataset_name = "Dataset999_Synthetic";
  for (int i = 0; i < cases; ++i) {
    input.spacings_zyx.push_back(spacing);
    input.shapes_after_crop_zyx.push_back(shape);
  }
  input.image_channel_names = std::move(image_channels);
  for (int m = 0; m < data_channels; ++m) {
    input.foreground_intensity_properties[std::to_string(m)] = {{"max", 255.0}, {"mean", 100.0}, {"median", 90.0}, {"min", 0.0},
                                                                {"percentile_00_5", 1.0}, {"percentile_99_5", 250.0}, {"std", 30.0}};
  }
  for (int c = 0; c < label_channels; ++c) {
    const std::string name = "label" + std::to_string(c);
    input.channel_names.push_back(name);
    input.channels.push_back({name, 1.0 / label_channels, 1.0, 0.01});
    input.bce_pos_weight.push_back(99.0);
    input.sampling_weights.push_back(1.0);
  }
  input.recommended_encoding = encoding;
  return input;
}

TEST(PlanSynthetic, Isotropic1mm128CubedIsOnePatchOfSixStages) {
  const PlanningInput input = synthetic(10, {1, 1, 1}, {128, 128, 128}, {"CT"}, 1, 1, "softmax");
  const Plans plans = plan_experiment(input, PlanOptions{});
  EXPECT_EQ(plans.target_spacing_zyx, (std::array<double, 3>{1, 1, 1}));
  EXPECT_EQ(plans.transpose.forward, (std::array<int, 3>{0, 1, 2}));
  ASSERT_EQ(plans.configurations.size(), 2u);  // 2d and 3d_fullres; the patch covers the image: no lowres
  EXPECT_EQ(plans.find("3d_lowres"), nullptr);
  const auto* full = plans.find("3d_fullres");
  ASSERT_NE(full, nullptr);
  EXPECT_EQ(full->patch.topology.patch_size, (Shape{128, 128, 128}));
  EXPECT_EQ(full->patch.topology.num_stages(), 6);  // 128 -> 4 in five halvings
  EXPECT_EQ(full->patch.features, (std::vector<int>{32, 64, 128, 256, 320, 320}));
  // Encoder 2*89,313,280 + decoder 3*89,292,800 + head 2*128^3 (softmax: 1 channel + background).
  EXPECT_DOUBLE_EQ(full->patch.feature_map_size, 450'699'264.0);
  EXPECT_EQ(full->patch.batch_size, 2);  // round(560e6 / 450.7e6 * 2) = 2
  EXPECT_FALSE(full->batch_dice);
  const auto* flat = plans.find("2d");
  ASSERT_NE(flat, nullptr);
  EXPECT_EQ(flat->patch.topology.patch_size, (Shape{128, 128}));
  EXPECT_EQ(flat->patch.features, (std::vector<int>{32, 64, 128, 256, 512, 512}));
  EXPECT_DOUBLE_EQ(flat->patch.feature_map_size, 5'128'192.0);
  // round(85e6 / 5,128,192 * 12) = 199, capped to 5% of 10 x 128^3 voxels: 1,048,576 / 16,384 = 64.
  EXPECT_EQ(flat->patch.batch_size, 64);
  EXPECT_EQ(plans.normalization.schemes, (std::vector<std::string>{"CT"}));
  EXPECT_EQ(plans.normalization.use_mask_for_norm, (std::vector<bool>{false}));
  EXPECT_EQ(plans.label_encoding, "softmax");
}

// ResidualEncoderUNet.compute_conv_feature_map_size on the example of nnU-Net's
// residual_encoder_unet_planners.py: 558,319,104 at 128^3 (6 stages, blocks 1,3,4,6,6,6, 3 classes)
// and 129,793,792 at 512^2 (7 stages, 512 cap), both with deep supervision; the planners build the
// network without it, which drops the heads of decoder stages 1..: 3 x (64^3 + 32^3 + 16^3 + 8^3)
// and 3 x (256^2 + ... + 16^2).
TEST(PlanResEnc, FeatureMapSizeEqualsDynamicNetworkArchitectures) {
  NetworkTopology volume;
  volume.patch_size = {128, 128, 128};
  volume.strides = {{1, 1, 1}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}};
  const std::vector<int> blocks{1, 3, 4, 6, 6, 6, 6};
  EXPECT_DOUBLE_EQ(residual_conv_feature_map_size(volume, {32, 64, 128, 256, 320, 320}, blocks, 1, 3),
                   558'319'104.0 - 3.0 * (262'144 + 32'768 + 4'096 + 512));
  NetworkTopology plane;
  plane.patch_size = {512, 512};
  plane.strides = {{1, 1}, {2, 2}, {2, 2}, {2, 2}, {2, 2}, {2, 2}, {2, 2}};
  EXPECT_DOUBLE_EQ(residual_conv_feature_map_size(plane, {32, 64, 128, 256, 512, 512, 512}, blocks, 1, 3),
                   129'793'792.0 - 3.0 * (65'536 + 16'384 + 4'096 + 1'024 + 256));
  EXPECT_THROW(residual_conv_feature_map_size(volume, {32, 64, 128, 256, 320, 320}, {1, 3}, 1, 3), Error);
}

// --planner resenc-m: the ResidualEncoderUNet with blocks 1,3,4,6,..., one conv per decoder stage,
// nnU-Net's ResEnc M budget (680e6 at 8 GB, shrink while estimate > reference) and batches that may
// cover the whole dataset; L and XL plan larger patches for the same images.
TEST(PlanResEnc, PresetsPlanTheResidualEncoderUNetWithTheirBudgets) {
  const PlanningInput input = synthetic(10, {1, 1, 1}, {256, 256, 256}, {"CT"}, 1, 1, "softmax");
  const PlanOptions m = with_network_planner(PlanOptions{}, NetworkPlanner::resenc_m);
  EXPECT_EQ(m.gpu_memory_gb, 8.0);
  EXPECT_EQ(m.max_dataset_fraction_per_batch, 1.0);
  EXPECT_EQ(with_network_planner(PlanOptions{}, NetworkPlanner::resenc_l).gpu_memory_gb, 24.0);
  PlanOptions own_memory;
  own_memory.gpu_memory_gb = 12;
  EXPECT_EQ(with_network_planner(own_memory, NetworkPlanner::resenc_xl, true).gpu_memory_gb, 12.0);
  const Plans plans = plan_experiment(input, m);
  const auto* full = plans.find("3d_fullres");
  ASSERT_NE(full, nullptr);
  EXPECT_LE(full->patch.feature_map_size, 680e6);
  const Json json = plans_to_json(plans, input, m);
  EXPECT_EQ(json["plans_name"], "mlsegResEncUNetMPlans");
  const Json& arch = json["configurations"]["3d_fullres"]["architecture"];
  EXPECT_EQ(arch["network_class_name"], "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet");
  const int stages = arch["arch_kwargs"]["n_stages"].get<int>();
  const std::vector<int> expected_blocks{1, 3, 4, 6, 6, 6, 6, 6};
  EXPECT_EQ(arch["arch_kwargs"]["n_blocks_per_stage"].get<std::vector<int>>(),
            std::vector<int>(expected_blocks.begin(), expected_blocks.begin() + stages));
  EXPECT_EQ(arch["arch_kwargs"]["n_conv_per_stage_decoder"].get<std::vector<int>>(), std::vector<int>(stages - 1, 1));
  EXPECT_FALSE(arch["arch_kwargs"].contains("n_conv_per_stage"));
  EXPECT_TRUE(check_plans(json).empty());

  auto patch_voxels = [&](NetworkPlanner planner) {
    const Plans p = plan_experiment(input, with_network_planner(PlanOptions{}, planner));
    double v = 1;
    for (auto s : p.find("3d_fullres")->patch.topology.patch_size) v *= static_cast<double>(s);
    return v;
  };
  EXPECT_LT(patch_voxels(NetworkPlanner::resenc_m), patch_voxels(NetworkPlanner::resenc_l));
  EXPECT_LT(patch_voxels(NetworkPlanner::resenc_l), patch_voxels(NetworkPlanner::resenc_xl));

  EXPECT_EQ(parse_network_planner("resenc-l"), NetworkPlanner::resenc_l);
  EXPECT_EQ(parse_network_planner("default"), NetworkPlanner::plain);
  try {
    parse_network_planner("resenc-s");
    FAIL() << "an unknown planner was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.fix().find("resenc-xl"), std::string::npos);
  }
}

TEST(PlanSynthetic, Anisotropic5To1UsesTenthPercentileAndPutsTheCoarseAxisFirst) {
  // x is the coarse axis (5 mm, 20 voxels); two cases are finer (3 and 4 mm).
  PlanningInput input = synthetic(10, {1, 1, 5}, {256, 256, 20}, {"T2"}, 1, 1, "softmax");
  input.spacings_zyx[0][2] = 3.0;
  input.spacings_zyx[1][2] = 4.0;
  input.median_relative_size_after_cropping = 0.5;
  const Plans plans = plan_experiment(input, PlanOptions{});
  // 10th percentile of {3, 4, 5 x 8}: 3 + 0.9 * (4 - 3) = 3.9 (median 5 > 3 x 1 and 20 x 3 < 256).
  EXPECT_NEAR(plans.target_spacing_zyx[2], 3.9, 1e-12);
  EXPECT_EQ(plans.transpose.forward, (std::array<int, 3>{2, 0, 1}));
  EXPECT_EQ(plans.transpose.backward, (std::array<int, 3>{1, 2, 0}));
  const auto* full = plans.find("3d_fullres");
  ASSERT_NE(full, nullptr);
  // Resampled x extents round(5/3.9*20) = 26 (x8), 15, 21: median 26.
  EXPECT_EQ(full->patch.median_shape, (std::vector<double>{26, 256, 256}));
  EXPECT_NEAR(full->patch.spacing[0], 3.9, 1e-12);
  // z is pooled only once within 2x of the in-plane spacing (rounds 2 and 3): 2 pools; y, x: 6.
  EXPECT_EQ(full->patch.topology.pools_per_axis, (std::vector<int>{2, 6, 6}));
  EXPECT_EQ(full->patch.topology.patch_size, (Shape{28, 256, 256}));
  EXPECT_EQ(full->patch.topology.kernel_sizes.front(), (std::vector<int>{1, 3, 3}));
  EXPECT_EQ(full->patch.topology.kernel_sizes[1], (std::vector<int>{3, 3, 3}));
  EXPECT_EQ(full->patch.topology.strides[1], (std::vector<int>{1, 2, 2}));
  EXPECT_EQ(full->patch.topology.strides[2], (std::vector<int>{2, 2, 2}));
  EXPECT_EQ(full->patch.topology.strides[4], (std::vector<int>{1, 2, 2}));
  EXPECT_DOUBLE_EQ(full->patch.feature_map_size, 493'602'816.0);
  EXPECT_EQ(full->patch.batch_size, 2);
  const auto* flat = plans.find("2d");
  ASSERT_NE(flat, nullptr);
  EXPECT_EQ(flat->patch.topology.patch_size, (Shape{256, 256}));
  EXPECT_DOUBLE_EQ(flat->patch.feature_map_size, 20'627'456.0);
  EXPECT_EQ(flat->patch.batch_size, 13);  // min(round(49.4), 5% of 26*256*256*10 / 256^2 = 13)
  EXPECT_EQ(plans.normalization.schemes, (std::vector<std::string>{"zscore"}));
  EXPECT_EQ(plans.normalization.use_mask_for_norm, (std::vector<bool>{true}));  // cropping left 50% < 3/4
}

TEST(PlanSynthetic, TwoDimensionalRgbDatasetHasOnlyThe2dConfiguration) {
  const PlanningInput input = synthetic(200, {1, 0.5, 0.5}, {1, 512, 512}, {"fundus"}, 3, 2, "sigmoid");
  const Plans plans = plan_experiment(input, PlanOptions{});
  ASSERT_EQ(plans.configurations.size(), 1u);
  const auto& flat = plans.configurations.front();
  EXPECT_EQ(flat.name, "2d");
  EXPECT_EQ(flat.patch.spacing, (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(flat.patch.topology.patch_size, (Shape{512, 512}));
  EXPECT_EQ(flat.patch.topology.num_stages(), 8);
  // Encoder 2*16,424,960 + decoder 3*16,416,768 + head 2 sigmoid channels * 512^2.
  EXPECT_DOUBLE_EQ(flat.patch.feature_map_size, 82'624'512.0);
  EXPECT_EQ(flat.patch.batch_size, 10);  // min(round(12.3), 5% of 200 images = 10)
  EXPECT_EQ(plans.normalization.schemes, (std::vector<std::string>{"rgb_to_0_1", "rgb_to_0_1", "rgb_to_0_1"}));
  EXPECT_EQ(plans.label_encoding, "sigmoid");
}

TEST(PlanSynthetic, LargeImagesGetA3dLowresConfigurationCoveringAQuarter) {
  const PlanningInput input = synthetic(20, {1, 1, 1}, {400, 400, 400}, {"MR"}, 1, 1, "softmax");
  const Plans plans = plan_experiment(input, PlanOptions{});
  const auto* full = plans.find("3d_fullres");
  const auto* low = plans.find("3d_lowres");
  ASSERT_NE(full, nullptr);
  ASSERT_NE(low, nullptr);
  EXPECT_TRUE(full->batch_dice);
  EXPECT_FALSE(low->batch_dice);
  EXPECT_GT(low->patch.spacing[0], 1.0);
  double patch = 1, image = 1;
  for (int i = 0; i < 3; ++i) {
    patch *= static_cast<double>(low->patch.topology.patch_size[i]);
    image *= low->patch.median_shape[i];
  }
  EXPECT_GE(patch / image, 0.25 * 0.9);  // the loop stops once the patch covers >= 25% (rounded median)
  EXPECT_LE(full->patch.feature_map_size, 560e6);
  EXPECT_GT(full->patch.shrink_steps, 0);
  // plans.json gets nnU-Net's cascade entry, which --check accepts.
  const auto json = plans_to_json(plans, input, PlanOptions{});
  const auto& configurations = json["configurations"];
  ASSERT_TRUE(configurations.contains("3d_cascade_fullres"));
  EXPECT_EQ(configurations["3d_cascade_fullres"]["inherits_from"], "3d_fullres");
  EXPECT_EQ(configurations["3d_cascade_fullres"]["previous_stage"], "3d_lowres");
  EXPECT_EQ(configurations["3d_lowres"]["next_stage"], "3d_cascade_fullres");
  EXPECT_TRUE(check_plans(json).empty());
}

TEST(PlanSynthetic, CpuPresetAndSmallerGpuShrinkThePatch) {
  const PlanningInput input = synthetic(10, {1, 1, 1}, {128, 128, 128}, {"CT"}, 1, 1, "softmax");
  PlanOptions cpu;
  cpu.preset = PlanPreset::cpu;
  const Plans cpu_plans = plan_experiment(input, cpu);
  const auto* cpu_full = cpu_plans.find("3d_fullres");
  ASSERT_NE(cpu_full, nullptr);
  EXPECT_DOUBLE_EQ(cpu_full->patch.budget, 35e6);
  EXPECT_LE(cpu_full->patch.feature_map_size, 35e6);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(cpu_full->patch.topology.patch_size[i] % cpu_full->patch.topology.divisible_by[i], 0);
  }
  PlanOptions four_gb;
  four_gb.gpu_memory_gb = 4;
  const Plans four_gb_plans = plan_experiment(input, four_gb);
  const auto* small = four_gb_plans.find("3d_fullres");
  ASSERT_NE(small, nullptr);
  EXPECT_DOUBLE_EQ(small->patch.budget, 280e6);
  EXPECT_LE(small->patch.feature_map_size, 280e6);
}

// Two channels seen alone and together, one rare combination and one carrying the ignore flag.
void add_combinations(PlanningInput& input) {
  input.combinations = {{{0b00}, 900000, false, false}, {{0b01}, 5000, false, false}, {{0b11}, 9000, false, false},
                        {{0b10}, 7000, false, false},  {{0b101}, 50, true, false},   {{0b100}, 10, false, true}};
  input.channels_overlap = true;
}

TEST(PlanSynthetic, PowersetClassesAreTheObservedCombinationsMostFrequentFirst) {
  PlanningInput input = synthetic(4, {1, 1, 1}, {32, 32, 32}, {"MR"}, 1, 2, "powerset");
  add_combinations(input);
  const Plans plans = plan_experiment(input, PlanOptions{});
  ASSERT_EQ(plans.label_encoding, "powerset");
  // Background is class 0 (implicit); the rare 0b101 and the ignored combination are not classes.
  EXPECT_EQ(plans.powerset_combinations, (std::vector<CombinationCode>{{0b11}, {0b10}, {0b01}}));
  const auto json = plans_to_json(plans, input, PlanOptions{});
  EXPECT_EQ(json["powerset_combinations"].dump(), R"([[],["label0","label1"],["label1"],["label0"]])");
  EXPECT_TRUE(check_plans(json).empty()) << check_plans(json).front().problem;
  const LabelEncoding read = LabelEncoding::from_json(json, input.channel_names, "plans.json");
  EXPECT_EQ(read.num_outputs(), 4);
}

TEST(PlanSynthetic, TooManyCombinationsIsAClearErrorOrSigmoidUnderAuto) {
  PlanningInput input = synthetic(4, {1, 1, 1}, {32, 32, 32}, {"MR"}, 1, 9, "powerset");
  for (std::uint64_t code = 1; code < 300; ++code) input.combinations.push_back({{code}, 1000, false, false});
  input.channels_overlap = true;
  PlanOptions powerset;
  powerset.encoding = "powerset";
  try {
    plan_experiment(input, powerset);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.problem()).find("300 powerset classes"), std::string::npos) << e.problem();
    EXPECT_NE(e.fix().find("sigmoid"), std::string::npos);
  }
  const Plans automatic = plan_experiment(input, PlanOptions{});
  EXPECT_EQ(automatic.label_encoding, "sigmoid");
  EXPECT_NE(automatic.encoding_note.find("300 powerset classes"), std::string::npos) << automatic.encoding_note;
  // A small memory budget refuses even a few classes for explicit powerset.
  PlanningInput few = synthetic(4, {1, 1, 1}, {128, 128, 128}, {"MR"}, 1, 2, "powerset");
  add_combinations(few);
  EXPECT_NO_THROW(plan_experiment(few, powerset));
  powerset.powerset_memory_fraction = 1e-6;
  EXPECT_THROW(plan_experiment(few, powerset), Error);
}

TEST(PlanSynthetic, OverlapForbidsSoftmax) {
  PlanningInput input = synthetic(4, {1, 1, 1}, {32, 32, 32}, {"MR"}, 1, 2, "sigmoid");
  input.channels_overlap = true;
  PlanOptions softmax;
  softmax.encoding = "softmax";
  EXPECT_THROW(plan_experiment(input, softmax), Error);
}

TEST(PlanRemedies, OnForImbalanceWithTemperedPosWeightOffWhenBalanced) {
  PlanningInput input = synthetic(4, {1, 1, 1}, {32, 32, 32}, {"MR"}, 1, 3, "sigmoid");
  const PlanOptions options;
  const auto balanced = plans_to_json(plan_experiment(input, options), input, options);
  EXPECT_EQ(balanced["remedies"]["sampling"], "uniform");
  EXPECT_EQ(balanced["remedies"]["bce_pos_weight"], false);
  EXPECT_EQ(balanced["bce_pos_weight"]["label0"], 1.0);
  input.channels[2].foreground_selection_probability = 0.05;  // 0.333 / 0.05: 6.7x
  input.bce_pos_weight = {4.0, 99.0, 1.0};
  const auto imbalanced = plans_to_json(plan_experiment(input, options), input, options);
  EXPECT_EQ(imbalanced["remedies"]["sampling"], "inverse_frequency");
  EXPECT_EQ(imbalanced["remedies"]["bce_pos_weight"], true);
  EXPECT_NE(imbalanced["remedies"]["reason"].get<std::string>().find("\"label2\""), std::string::npos);
  EXPECT_DOUBLE_EQ(imbalanced["bce_pos_weight"]["label0"].get<double>(), 2.0);  // sqrt(4)
  EXPECT_DOUBLE_EQ(imbalanced["bce_pos_weight"]["label1"].get<double>(), kMaxPlannedPosWeight);
  EXPECT_DOUBLE_EQ(imbalanced["bce_pos_weight"]["label2"].get<double>(), 1.0);
  // Edited values are checked.
  auto edited = imbalanced;
  edited["sampling_weights"]["label1"] = -1;
  edited["remedies"]["sampling"] = "sometimes";
  std::set<std::string> keys;
  for (const auto& p : check_plans(edited)) keys.insert(p.key);
  EXPECT_EQ(keys, (std::set<std::string>{"sampling_weights", "remedies.sampling"}));
}

TEST(PlanValidationCoverage, FormulaMatchesHandComputedValues) {
  PlanOptions options;
  // p = 0.33*0.5 + 0.67*1*(0.1 + 0.1)^3 = 0.17036: 25 patches, raised to nnU-Net's 50.
  EXPECT_NEAR(patch_hit_probability({"a", 0.5, 1.0, 0.001}, 0.001, options), 0.17036, 1e-12);
  // A rare channel: p = 0.33*0.01 + 0.67*0.1*1e-6 = 0.003300067: ceil(ln 0.01 / ln(1-p)) = 1394.
  EXPECT_EQ(validation_iterations_for_coverage({{"a", 0.5, 1.0, 0.001}}, 0.001, options), 50);
  EXPECT_EQ(validation_iterations_for_coverage({{"a", 0.5, 1.0, 0.001}, {"rare", 0.01, 0.1, 1e-6}}, 0.0, options), 1394);
  // Absent channels cannot be covered and are left out.
  EXPECT_EQ(validation_iterations_for_coverage({{"absent", 0.0, 0.0, 0.0}}, 0.1, options), 50);
}

TEST(PlanJson, HasNnUNetKeysAndNoNan) {
  const PlanningInput input = synthetic(10, {1, 1, 1}, {128, 128, 128}, {"CT"}, 1, 1, "softmax");
  const PlanOptions options;
  const Plans plans = plan_experiment(input, options);
  const auto json = plans_to_json(plans, input, options);
  EXPECT_EQ(json["plans_name"], "mlsegPlans");
  const auto& full = json["configurations"]["3d_fullres"];
  EXPECT_EQ(full["patch_size"].get<std::vector<int>>(), (std::vector<int>{128, 128, 128}));
  EXPECT_EQ(full["architecture"]["arch_kwargs"]["n_stages"], 6);
  EXPECT_EQ(full["architecture"]["arch_kwargs"]["norm_op_kwargs"]["eps"], 1e-5);
  EXPECT_EQ(full["resampling_fn_data_kwargs"]["order"], 3);
  EXPECT_EQ(full["resampling_fn_seg_kwargs"]["order"], 1);
  EXPECT_EQ(json["bce_pos_weight"]["label0"], 1.0);  // one channel: no imbalance, no pos_weight
  EXPECT_EQ(json["remedies"]["sampling"], "uniform");
  EXPECT_EQ(json["val_iterations_auto"]["3d_fullres"], full["val_iterations_auto"]);
  EXPECT_EQ(json.dump().find("nan"), std::string::npos);
  EXPECT_TRUE(check_plans(json).empty());
}

TEST(PlanSynthetic, CtWithoutForegroundStatisticsSaysWhatIsMissing) {
  PlanningInput input = synthetic(4, {1, 1, 1}, {32, 32, 32}, {"ct"}, 1, 1, "softmax");
  input.foreground_intensity_properties["0"] = {{"mean", nullptr}, {"reason", "no_foreground"}};
  const Plans plans = plan_experiment(input, PlanOptions{});
  EXPECT_EQ(plans.normalization.schemes, (std::vector<std::string>{"CT"}));
  ASSERT_EQ(plans.notes.size(), 2u);  // and the remedies' note
  EXPECT_NE(plans.notes.front().find("CT normalisation needs them"), std::string::npos);
  EXPECT_NE(plans.notes.back().find("remedies: off"), std::string::npos);
}

TEST(PlanCheck, AcceptsNnUNetSchemeClassNames) {
  EXPECT_EQ(canonical_normalization_scheme("ZScoreNormalization"), "zscore");
  EXPECT_EQ(canonical_normalization_scheme("CTNormalization"), "CT");
  EXPECT_EQ(canonical_normalization_scheme("nonorm"), "noNorm");
  EXPECT_EQ(canonical_normalization_scheme("zscorex"), "");
}

TEST(PlanCheck, PlansJsonNamesSchemesAsNnUNetDoesAndOldNamesStillRead) {
  // nnU-Net's PlansManager / DefaultPreprocessor look the names up as classes: mlseg writes those.
  const PlanOptions options;
  for (const std::string channel : {"CT", "T2"}) {
    const PlanningInput input = synthetic(10, {1, 1, 1}, {128, 128, 128}, {channel}, 1, 1, "softmax");
    auto json = plans_to_json(plan_experiment(input, options), input, options);
    const std::string expected = channel == "CT" ? "CTNormalization" : "ZScoreNormalization";
    for (const auto& [name, config] : json["configurations"].items()) {
      EXPECT_EQ(config["normalization_schemes"], nlohmann::ordered_json::array({expected})) << name;
    }
    EXPECT_TRUE(check_plans(json).empty());
    json["configurations"]["3d_fullres"]["normalization_schemes"] = {channel == "CT" ? "CT" : "zscore"};  // plans written before
    EXPECT_TRUE(check_plans(json).empty());
  }
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"noNorm", "NoNormalization"}, {"rescale_to_0_1", "RescaleTo01Normalization"}, {"RGBTo01Normalization", "RGBTo01Normalization"}}) {
    EXPECT_EQ(nnunet_normalization_class_name(from), to);
  }
  EXPECT_EQ(nnunet_normalization_class_name("zscorex"), "");
}

TEST(PlanCheck, BadPatchNamesTheKeyAndTheFix) {
  const PlanningInput input = synthetic(10, {1, 1, 1}, {128, 128, 128}, {"CT"}, 1, 1, "softmax");
  const PlanOptions options;
  auto json = plans_to_json(plan_experiment(input, options), input, options);
  json["configurations"]["3d_fullres"]["patch_size"] = {128, 100, 128};
  json["configurations"]["2d"]["batch_size"] = 0;
  json["configurations"]["2d"]["normalization_schemes"] = {"zscorex"};
  json["label_encoding"] = "powerset";
  const auto problems = check_plans(json);
  auto find = [&](const std::string& key) -> const PlansProblem* {
    for (const auto& p : problems) {
      if (p.key == key) return &p;
    }
    return nullptr;
  };
  const auto* patch = find("configurations.3d_fullres.patch_size");
  ASSERT_NE(patch, nullptr);
  EXPECT_NE(patch->problem.find("axis 1 is 100, not divisible by 32"), std::string::npos) << patch->problem;
  EXPECT_NE(patch->fix.find("96 or 128"), std::string::npos) << patch->fix;
  EXPECT_NE(find("configurations.2d.batch_size"), nullptr);
  EXPECT_NE(find("configurations.2d.normalization_schemes"), nullptr);
  EXPECT_NE(find("powerset_combinations"), nullptr);  // powerset without its combination table
  EXPECT_EQ(problems.size(), 4u);
}

TEST(PlanCheck, InconsistentStridesAndKernels) {
  const PlanningInput input = synthetic(10, {1, 1, 1}, {128, 128, 128}, {"CT"}, 1, 1, "softmax");
  const PlanOptions options;
  auto json = plans_to_json(plan_experiment(input, options), input, options);
  auto& arch = json["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"];
  arch["kernel_sizes"].erase(arch["kernel_sizes"].size() - 1);
  arch["strides"][1] = {2, 2};
  json["configurations"]["3d_fullres"]["spacing"] = {1.0, -1.0, 1.0};
  json["transpose_backward"] = {2, 0, 1};
  const auto problems = check_plans(json);
  std::set<std::string> keys;
  for (const auto& p : problems) keys.insert(p.key);
  EXPECT_TRUE(keys.count("configurations.3d_fullres.architecture.arch_kwargs.kernel_sizes"));
  EXPECT_TRUE(keys.count("configurations.3d_fullres.architecture.arch_kwargs.strides"));
  EXPECT_TRUE(keys.count("configurations.3d_fullres.spacing"));
  EXPECT_TRUE(keys.count("transpose_backward"));
}

}  // namespace
}  // namespace mlseg

namespace mlseg {
namespace {

TEST(PlansFile, ReadsTheSharedKeysTypedAndRefusesWhatCheckPlansRefuses) {
  PlanningInput input = synthetic(4, {1, 1, 1}, {32, 32, 32}, {"MR"}, 1, 2, "powerset");
  add_combinations(input);
  const PlanOptions options;
  auto json = plans_to_json(plan_experiment(input, options), input, options);
  const PlansFile plans = plans_from_json(json, "plans.json");
  EXPECT_EQ(plans.channel_names, (std::vector<std::string>{"label0", "label1"}));
  EXPECT_EQ(plans.encoding.kind(), EncodingKind::powerset);
  EXPECT_EQ(plans.encoding.num_outputs(), 4);
  const PlannedConfiguration& full = plans.configuration("3d_fullres");
  EXPECT_EQ(full.patch_size, json["configurations"]["3d_fullres"]["patch_size"].get<std::vector<std::int64_t>>());
  EXPECT_EQ(full.patch_zyx()[0], full.patch_size[0]);
  EXPECT_EQ(plans.configuration("2d").patch_zyx()[0], 1);
  EXPECT_THROW(plans.configuration("3d_lowres"), Error);
  json["configurations"]["3d_fullres"]["batch_size"] = 0;
  json["powerset_combinations"][1] = {"label7"};
  try {
    plans_from_json(json, "plans.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.problem()).find("2 problem(s)"), std::string::npos) << e.problem();
    EXPECT_NE(std::string(e.problem()).find("configurations.3d_fullres.batch_size"), std::string::npos) << e.problem();
    EXPECT_NE(std::string(e.problem()).find("powerset_combinations"), std::string::npos) << e.problem();
  }
}

// What preprocessing and prediction need comes typed from the same reader: the normalisation per
// image channel (with CT statistics) and the image resampling order, nnU-Net's 3 by default.
TEST(PlansFile, CarriesNormalisationAndResamplingOrderPerConfiguration) {
  PlanningInput input = synthetic(4, {1, 1, 1}, {32, 32, 32}, {"CT", "MR"}, 2, 2, "sigmoid");
  const PlanOptions options;
  auto json = plans_to_json(plan_experiment(input, options), input, options);
  PlansFile plans = plans_from_json(json, "plans.json");
  const PlannedConfiguration& full = plans.configuration("3d_fullres");
  ASSERT_EQ(full.normalization.size(), 2u);
  EXPECT_EQ(full.normalization[0].scheme, "CT");
  EXPECT_EQ(full.normalization[1].scheme, "zscore");
  EXPECT_DOUBLE_EQ(full.normalization[0].ct_mean,
                   json["foreground_intensity_properties_per_channel"]["0"]["mean"].get<double>());
  EXPECT_EQ(full.image_resampling_order, 3);
  json["configurations"]["3d_fullres"]["resampling_fn_data_kwargs"]["order"] = 1;
  EXPECT_EQ(plans_from_json(json, "plans.json").configuration("3d_fullres").image_resampling_order, 1);
  json["configurations"]["3d_fullres"]["resampling_fn_data_kwargs"]["order"] = 2;
  try {
    plans_from_json(json, "plans.json");
    FAIL() << "order 2 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.problem()).find("resampling_fn_data_kwargs.order"), std::string::npos) << e.problem();
  }
}

}  // namespace
}  // namespace mlseg
