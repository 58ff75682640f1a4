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
    const PlainConvUNet net = network_from_plans(plans, name, 1, 2, true);
    const auto& o = net->options;
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
  PlainConvUNet net = network_from_plans(plans, "3d_fullres", 1, 2, true);
  const auto patch = plans["configurations"]["3d_fullres"]["patch_size"].get<std::vector<std::int64_t>>();
  std::vector<std::int64_t> input_shape{1, 1};
  input_shape.insert(input_shape.end(), patch.begin(), patch.end());
  torch::NoGradGuard no_grad;
  const auto outputs = net->forward(torch::randn(input_shape));
  ASSERT_EQ(static_cast<int>(outputs.size()), net->options.n_stages() - 1);
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
  const PlainConvUNet net = network_from_plans(plans, "3d_fullres", 1, 2, false);
  const auto stages = static_cast<std::size_t>(net->options.n_stages());
  EXPECT_EQ(net->options.n_conv_per_stage(), std::vector<int>(stages, 3));
  EXPECT_EQ(net->options.n_conv_per_stage_decoder(), std::vector<int>(stages - 1, 1));
}

TEST(NetworkOutputs, SigmoidHasOnePerChannelSoftmaxAddsBackgroundPowersetOnePerCombination) {
  EXPECT_EQ(LabelEncoding::sigmoid(3).num_outputs(), 3);
  EXPECT_EQ(LabelEncoding::softmax(3).num_outputs(), 4);
  EXPECT_EQ(LabelEncoding::powerset(3, {{0b001}, {0b011}}).num_outputs(), 3);  // + background
}

}  // namespace
}  // namespace mlseg
