// network_from_plans on the planner's own plans.json and on hand-broken ones.
#include "mlseg/nn/network_from_plans.h"

#include <gtest/gtest.h>

#include "mlseg/labels/label_encoding.h"
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <functional>

#include "mlseg/core/error.h"
#include "mlseg/planning/planner.h"
#include "mlseg/planning/plans_json.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

// Hippocampus-like: 1 MRI channel, 2 label channels, ~36x50x35 voxels at 1 mm.
Json hippocampus_like_plans() {
  PlanningInput input;
  input.dataset_name = "Dataset998_HippocampusLike";
  for (int i = 0; i < 20; ++i) {
    input.spacings_zyx.push_back({1.0, 1.0, 1.0});
    input.shapes_after_crop_zyx.push_back({36, 50, 35});
  }
  input.image_channel_names = {"MRI"};
  input.channel_names = {"anterior", "posterior"};
  input.channels = {{"anterior", 0.5, 1.0, 0.02}, {"posterior", 0.5, 1.0, 0.02}};
  input.bce_pos_weight = {1.0, 1.0};
  input.sampling_weights = {1.0, 1.0};
  input.recommended_encoding = "sigmoid";
  const PlanOptions options;
  return plans_to_json(plan_experiment(input, options), input, options);
}

std::vector<std::vector<std::int64_t>> as_int64(const Json& lists) {
  return lists.get<std::vector<std::vector<std::int64_t>>>();
}

std::string problem_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.problem();
  }
  return "(no error)";
}

TEST(NetworkFromPlans, EveryPlannedConfigurationBuildsItsTopology) {
  const Json plans = hippocampus_like_plans();
  ASSERT_TRUE(plans["configurations"].contains("3d_fullres"));
  ASSERT_TRUE(plans["configurations"].contains("2d"));
  for (const auto& [name, config] : plans["configurations"].items()) {
    const Json& arch = config["architecture"]["arch_kwargs"];
    const SegmentationNetwork network = network_from_plans(plans, name, 1, 2, true);
    ASSERT_NE(network.as<PlainConvUNetImpl>(), nullptr) << name;
    EXPECT_EQ(network->class_name(), kPlainConvUNetClass);
    const auto& o = network.as<PlainConvUNetImpl>()->options;
    EXPECT_EQ(o.dimension(), name == "2d" ? 2 : 3) << name;
    EXPECT_EQ(o.n_stages(), arch["n_stages"].get<int>()) << name;
    EXPECT_EQ(o.features_per_stage(), arch["features_per_stage"].get<std::vector<std::int64_t>>()) << name;
    EXPECT_EQ(o.kernel_sizes(), as_int64(arch["kernel_sizes"])) << name;
    EXPECT_EQ(o.strides(), as_int64(arch["strides"])) << name;
    EXPECT_EQ(o.num_classes(), 2);
    EXPECT_TRUE(o.deep_supervision());
  }
}

TEST(NetworkFromPlans, PlannedPatchGivesOneOutputPerDecoderStage) {
  const Json plans = hippocampus_like_plans();
  torch::manual_seed(0);
  const SegmentationNetwork net = network_from_plans(plans, "3d_fullres", 1, 2, true);
  const auto patch = plans["configurations"]["3d_fullres"]["patch_size"].get<std::vector<std::int64_t>>();
  std::vector<std::int64_t> input_shape{1, 1};
  input_shape.insert(input_shape.end(), patch.begin(), patch.end());
  torch::NoGradGuard no_grad;
  const auto outputs = net->forward(torch::randn(input_shape));
  ASSERT_EQ(outputs.size(), net->strides().size() - 1);
  EXPECT_EQ(outputs[0].sizes().slice(2).vec(), patch);
  EXPECT_EQ(outputs[0].size(1), 2);
}

TEST(NetworkFromPlans, MissingOrMalformedKeysAreNamed) {
  const Json good = hippocampus_like_plans();
  const std::string arch_at = "configurations.3d_fullres.architecture.arch_kwargs.";
  auto build = [](const Json& plans) { return [plans] { network_from_plans(plans, "3d_fullres", 1, 2, true); }; };

  Json plans = good;
  plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"].erase("strides");
  EXPECT_EQ(problem_of(build(plans)), arch_at + "strides is missing");

  plans = good;
  plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["conv_op"] = "torch.nn.Conv1d";
  EXPECT_NE(problem_of(build(plans)).find("neither Conv2d nor Conv3d"), std::string::npos);

  plans = good;
  plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["kernel_sizes"][1] = Json::array({3, 3});
  EXPECT_NE(problem_of(build(plans)).find(arch_at + "kernel_sizes[1]"), std::string::npos);

  plans = good;
  plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["features_per_stage"][0] = "32";
  EXPECT_NE(problem_of(build(plans)).find(arch_at + "features_per_stage"), std::string::npos);

  plans = good;
  plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["n_stages"] = 7;
  const std::string seven = problem_of(build(plans));
  EXPECT_EQ(seven.rfind(arch_at + "features_per_stage is [", 0), 0u) << seven;
  EXPECT_NE(seven.find("not a list of 7 integers"), std::string::npos) << seven;

  plans = good;
  plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["kernel_sizes"][0] = Json::array({2, 3, 3});
  EXPECT_NE(problem_of(build(plans)).find("even size 2"), std::string::npos);

  try {
    network_from_plans(good, "3d_lowres", 1, 2, true);
    FAIL() << "expected mlseg::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.problem(), "plans.json has no configuration '3d_lowres'");
    EXPECT_NE(e.fix().find("3d_fullres"), std::string::npos);
  }
  EXPECT_EQ(problem_of([] { network_from_plans(Json::object(), "2d", 1, 2, true); }), "configurations is missing");
}

TEST(NetworkFromPlans, OneIntegerConvCountMeansEveryStage) {
  Json plans = hippocampus_like_plans();
  auto& arch = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"];
  arch["n_conv_per_stage"] = 3;
  arch["n_conv_per_stage_decoder"] = 1;
  const SegmentationNetwork network = network_from_plans(plans, "3d_fullres", 1, 2, false);
  const PlainConvUNetImpl* net = network.as<PlainConvUNetImpl>();
  ASSERT_NE(net, nullptr);
  const auto stages = static_cast<std::size_t>(net->options.n_stages());
  EXPECT_EQ(net->options.n_conv_per_stage(), std::vector<int>(stages, 3));
  EXPECT_EQ(net->options.n_conv_per_stage_decoder(), std::vector<int>(stages - 1, 1));
}

// The factory builds the class plans.json names (full or short, as dynamic_network_architectures
// spells it) and refuses others, listing what it builds.
TEST(NetworkFactory, BuildsTheNamedClassAndRefusesUnknownOnes) {
  Json plans = hippocampus_like_plans();
  Json& architecture = plans["configurations"]["3d_fullres"]["architecture"];
  architecture["network_class_name"] = kResidualEncoderUNetClass;
  architecture["arch_kwargs"]["n_blocks_per_stage"] = 2;
  architecture["arch_kwargs"]["n_conv_per_stage_decoder"] = 1;
  const SegmentationNetwork residual = network_from_plans(plans, "3d_fullres", 1, 2, true);
  ASSERT_NE(residual.as<ResidualEncoderUNetImpl>(), nullptr);
  EXPECT_EQ(residual->class_name(), kResidualEncoderUNetClass);
  EXPECT_TRUE(residual->deep_supervision());
  EXPECT_EQ(residual.as<ResidualEncoderUNetImpl>()->options.n_blocks_per_stage(),
            std::vector<int>(architecture["arch_kwargs"]["n_stages"].get<std::size_t>(), 2));

  architecture["network_class_name"] = "ResidualEncoderUNet";  // short name
  EXPECT_NE(network_from_plans(plans, "3d_fullres", 1, 2, true).as<ResidualEncoderUNetImpl>(), nullptr);

  architecture["arch_kwargs"].erase("n_blocks_per_stage");
  EXPECT_EQ(problem_of([&] { network_from_plans(plans, "3d_fullres", 1, 2, true); }),
            "configurations.3d_fullres.architecture.arch_kwargs.n_blocks_per_stage is missing");

  architecture["network_class_name"] = "dynamic_network_architectures.architectures.unet.ResidualUNet";
  const std::string unknown = problem_of([&] { network_from_plans(plans, "3d_fullres", 1, 2, true); });
  EXPECT_NE(unknown.find("'dynamic_network_architectures.architectures.unet.ResidualUNet'"), std::string::npos) << unknown;
  try {
    network_from_plans(plans, "3d_fullres", 1, 2, true);
  } catch (const Error& e) {
    EXPECT_NE(e.fix().find("PlainConvUNet, ResidualEncoderUNet"), std::string::npos) << e.fix();
  }
  EXPECT_EQ(supported_network_classes(), (std::vector<std::string>{kPlainConvUNetClass, kResidualEncoderUNetClass}));
}

// A copy from the seam's clone owns its parameters.
TEST(NetworkFactory, CloneCopiesTheParameters) {
  const Json plans = hippocampus_like_plans();
  const SegmentationNetwork network = network_from_plans(plans, "2d", 1, 2, false);
  const SegmentationNetwork copy = network.clone();
  ASSERT_NE(copy.as<PlainConvUNetImpl>(), nullptr);
  auto original = network->module().named_parameters();
  for (auto& item : copy->module().named_parameters()) {
    ASSERT_TRUE(torch::equal(item.value(), original[item.key()])) << item.key();
    torch::NoGradGuard no_grad;
    item.value().add_(1.0);
  }
  EXPECT_FALSE(torch::equal(copy->module().parameters().front(), network->module().parameters().front()));
}

TEST(NetworkOutputs, SigmoidHasOnePerChannelSoftmaxAddsBackgroundPowersetOnePerCombination) {
  EXPECT_EQ(LabelEncoding::sigmoid(3).num_outputs(), 3);
  EXPECT_EQ(LabelEncoding::softmax(3).num_outputs(), 4);
  EXPECT_EQ(LabelEncoding::powerset(3, {{0b001}, {0b011}}).num_outputs(), 3);  // + background
}

}  // namespace
}  // namespace mlseg
