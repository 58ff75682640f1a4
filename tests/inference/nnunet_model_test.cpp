// The plans adapter behind `mlseg predict -m <nnU-Net model folder>` (src/mlseg/inference/nnunet_model.cpp):
// inheritance, the pre-2.2 architecture keys, labels and regions, and what it refuses. Agreement of
// whole predictions with nnUNetPredictor is in tests/parity/nnunet_model_parity_test.cpp.
#include "mlseg/inference/nnunet_model.h"

#include <gtest/gtest.h>

#include <fstream>

#include "mlseg/core/error.h"
#include "mlseg/planning/plans_file.h"
#include "test_support.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

Json architecture() {
  return Json::parse(R"({
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 32], "conv_op": "torch.nn.modules.conv.Conv3d",
      "kernel_sizes": [[3, 3, 3], [3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
      "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2], "conv_bias": true,
      "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-05, "affine": true},
      "dropout_op": null, "dropout_op_kwargs": null, "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": true}},
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]})");
}

Json nnunet_plans() {
  Json plans = Json::parse(R"({"dataset_name": "Dataset004_Hippocampus", "plans_name": "nnUNetPlans",
    "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
    "foreground_intensity_properties_per_channel": {"0": {"max": 10.0, "mean": 1.0, "median": 1.0, "min": 0.0,
      "percentile_00_5": 0.0, "percentile_99_5": 9.0, "std": 2.0}},
    "configurations": {
      "3d_fullres": {"data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 9, "patch_size": [40, 56, 40], "spacing": [1.0, 1.0, 1.0],
        "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [false],
        "resampling_fn_data_kwargs": {"is_seg": false, "order": 3, "order_z": 0, "force_separate_z": null},
        "batch_dice": false},
      "3d_lowres": {"inherits_from": "3d_fullres", "spacing": [2.0, 2.0, 2.0], "patch_size": [32, 32, 32],
        "next_stage": "3d_cascade_fullres"},
      "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}}})");
  plans["configurations"]["3d_fullres"]["architecture"] = architecture();
  return plans;
}

Json labels_dataset() {
  return Json::parse(R"({"channel_names": {"0": "MRI"}, "labels": {"background": 0, "anterior": 1, "posterior": 2},
    "numTraining": 2, "file_ending": ".nii.gz"})");
}

TEST(NnunetModelPlans, LabelsBecomeSoftmaxChannelsInValueOrder) {
  const Json plans = mlseg_plans_for_nnunet_model(nnunet_plans(), labels_dataset(), "3d_fullres", "plans.json");
  const PlansFile typed = plans_from_json(plans, "plans.json");
  EXPECT_EQ(typed.channel_names, (std::vector<std::string>{"anterior", "posterior"}));
  EXPECT_EQ(typed.image_channel_names, std::vector<std::string>{"MRI"});
  EXPECT_EQ(typed.encoding.name(), "softmax");
  EXPECT_EQ(typed.encoding.num_outputs(), 3);
  EXPECT_EQ(typed.configuration("3d_fullres").batch_size, 9);
  EXPECT_FALSE(typed.has_configuration("3d_lowres")) << "only the model's configuration is kept";
}

TEST(NnunetModelPlans, RegionsBecomeOneSigmoidPerRegion) {
  Json dataset = Json::parse(R"({"channel_names": {"0": "T1", "1": "T2"},
    "labels": {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3},
    "regions_class_order": [1, 2, 3], "numTraining": 2, "file_ending": ".nii.gz"})");
  Json plans_in = nnunet_plans();
  plans_in["configurations"]["3d_fullres"]["normalization_schemes"] = {"ZScoreNormalization", "ZScoreNormalization"};
  plans_in["configurations"]["3d_fullres"]["use_mask_for_norm"] = {true, true};
  const PlansFile typed = plans_from_json(mlseg_plans_for_nnunet_model(plans_in, dataset, "3d_fullres", "p"), "p");
  EXPECT_EQ(typed.encoding.name(), "sigmoid");
  EXPECT_EQ(typed.encoding.num_outputs(), 3);
  EXPECT_EQ(typed.channel_names, (std::vector<std::string>{"whole", "core", "enhancing"}));
  EXPECT_EQ(typed.image_channel_names, (std::vector<std::string>{"T1", "T2"}));
}

TEST(NnunetModelPlans, InheritingConfigurationsAreResolvedLikeNnUNet) {
  const Json plans = mlseg_plans_for_nnunet_model(nnunet_plans(), labels_dataset(), "3d_lowres", "plans.json");
  const Json& lowres = plans["configurations"]["3d_lowres"];
  EXPECT_FALSE(lowres.contains("inherits_from"));
  EXPECT_EQ(lowres["patch_size"], Json::parse("[32, 32, 32]"));              // its own
  EXPECT_EQ(lowres["spacing"], Json::parse("[2.0, 2.0, 2.0]"));              // its own
  EXPECT_EQ(lowres["architecture"], architecture());                         // the parent's
  EXPECT_EQ(lowres["batch_size"], 9);                                        // the parent's
  EXPECT_EQ(plans_from_json(plans, "plans.json").configuration("3d_lowres").patch_size, (std::vector<std::int64_t>{32, 32, 32}));
}

TEST(NnunetModelPlans, OldArchitectureKeysAreConverted) {
  Json plans_in = nnunet_plans();
  Json& c = plans_in["configurations"]["3d_fullres"];
  c.erase("architecture");
  c["UNet_class_name"] = "PlainConvUNet";
  c["UNet_base_num_features"] = 32;
  c["unet_max_num_features"] = 64;
  c["conv_kernel_sizes"] = Json::parse("[[1, 3, 3], [3, 3, 3], [3, 3, 3]]");
  c["pool_op_kernel_sizes"] = Json::parse("[[1, 1, 1], [1, 2, 2], [2, 2, 2]]");
  c["n_conv_per_stage_encoder"] = Json::parse("[2, 2, 2]");
  c["n_conv_per_stage_decoder"] = Json::parse("[2, 2]");
  const Json plans = mlseg_plans_for_nnunet_model(plans_in, labels_dataset(), "3d_fullres", "plans.json");
  const Json& arch = plans["configurations"]["3d_fullres"]["architecture"];
  EXPECT_EQ(arch["network_class_name"], "dynamic_network_architectures.architectures.unet.PlainConvUNet");
  EXPECT_EQ(arch["arch_kwargs"]["features_per_stage"], Json::parse("[32, 64, 64]"));  // min(32 * 2^s, 64)
  EXPECT_EQ(arch["arch_kwargs"]["strides"], c["pool_op_kernel_sizes"]);
  EXPECT_EQ(arch["arch_kwargs"]["kernel_sizes"], c["conv_kernel_sizes"]);
  EXPECT_EQ(arch["arch_kwargs"]["n_stages"], 3);
  EXPECT_EQ(arch["arch_kwargs"]["n_conv_per_stage"], c["n_conv_per_stage_encoder"]);
  // Old ResidualEncoderUNet plans: the encoder counts are blocks per stage (old get_network_from_plans).
  c["UNet_class_name"] = "ResidualEncoderUNet";
  c["n_conv_per_stage_encoder"] = Json::parse("[1, 3, 4]");
  const Json residual = mlseg_plans_for_nnunet_model(plans_in, labels_dataset(), "3d_fullres", "plans.json");
  const Json& residual_arch = residual["configurations"]["3d_fullres"]["architecture"];
  EXPECT_EQ(residual_arch["network_class_name"], "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet");
  EXPECT_EQ(residual_arch["arch_kwargs"]["n_blocks_per_stage"], Json::parse("[1, 3, 4]"));
  EXPECT_FALSE(residual_arch["arch_kwargs"].contains("n_conv_per_stage"));
  c["UNet_class_name"] = "ResidualUNet";
  EXPECT_THROW(mlseg_plans_for_nnunet_model(plans_in, labels_dataset(), "3d_fullres", "plans.json"), Error);
}

TEST(NnunetModelPlans, RefusesCascadesUnknownConfigurationsAndUnorderedLabels) {
  auto problem = [](const Json& plans, const Json& dataset, const std::string& configuration) {
    try {
      mlseg_plans_for_nnunet_model(plans, dataset, configuration, "model/plans.json");
    } catch (const Error& e) {
      EXPECT_EQ(e.where().file, "model/plans.json");
      return e.problem();
    }
    return std::string("accepted");
  };
  EXPECT_NE(problem(nnunet_plans(), labels_dataset(), "3d_cascade_fullres").find("cascade"), std::string::npos);
  EXPECT_NE(problem(nnunet_plans(), labels_dataset(), "2d").find("3d_fullres, 3d_lowres, 3d_cascade_fullres"), std::string::npos);
  Json unordered = labels_dataset();
  unordered["labels"] = Json::parse(R"({"background": 0, "posterior": 2, "anterior": 1})");
  EXPECT_NE(problem(nnunet_plans(), unordered, "3d_fullres").find("posterior"), std::string::npos);
  Json wrong_type = nnunet_plans();
  wrong_type["configurations"]["3d_lowres"]["inherits_from"] = 3;
  EXPECT_NE(problem(wrong_type, labels_dataset(), "3d_lowres").find("inherits_from"), std::string::npos);
  Json old_format = nnunet_plans();
  old_format["configurations"]["3d_fullres"].erase("architecture");
  old_format["configurations"]["3d_fullres"]["UNet_class_name"] = "PlainConvUNet";
  for (const char* key : {"UNet_base_num_features", "unet_max_num_features", "conv_kernel_sizes", "pool_op_kernel_sizes",
                          "n_conv_per_stage_encoder", "n_conv_per_stage_decoder"}) {
    old_format["configurations"]["3d_fullres"][key] = "not a number";
  }
  EXPECT_NE(problem(old_format, labels_dataset(), "3d_fullres").find("nnU-Net's form"), std::string::npos);
  Json looping = nnunet_plans();
  looping["configurations"]["3d_fullres"]["inherits_from"] = "3d_lowres";
  EXPECT_NE(problem(looping, labels_dataset(), "3d_lowres").find("loop"), std::string::npos);
}

TEST(NnunetModelFolder, IsRecognisedByItsFiles) {
  testing::TempDir tmp;
  const auto model = tmp / "nnUNetTrainer__nnUNetPlans__3d_fullres";
  std::filesystem::create_directories(model / "fold_0");
  EXPECT_FALSE(is_nnunet_model_folder(model));
  std::ofstream(model / "plans.json") << "{}";
  std::ofstream(model / "dataset.json") << "{}";
  EXPECT_FALSE(is_nnunet_model_folder(model)) << "no checkpoint";
  std::ofstream(model / "fold_0" / "checkpoint_final.pt") << "";
  EXPECT_FALSE(is_nnunet_model_folder(model)) << "an mlseg checkpoint";
  std::ofstream(model / "fold_0" / "checkpoint_final.pth") << "";
  EXPECT_TRUE(is_nnunet_model_folder(model));
  EXPECT_EQ(nnunet_configuration_from_folder_name(model), "3d_fullres");
  EXPECT_EQ(nnunet_configuration_from_folder_name(tmp / "results" / "3d_fullres"), "");
}

}  // namespace
}  // namespace mlseg
