// ResidualEncoderUNet against dynamic-network-architectures' (issue #19): the network nnU-Net's
// get_network_from_plans builds from ResEnc arch_kwargs (peer: tests/parity/peer/residual_encoder_unet.py).
// Same parameter names and shapes, nnU-Net's weights load 1:1 by name, and the deep-supervision outputs
// agree in float64; mlseg's own initialisation follows ResidualEncoderUNet.initialize.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <set>

#include "mlseg/io/json_file.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/nn/state_dict.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

constexpr double kOutputTolerance = 1e-10;  // float64, identical weights: rounding only

TEST(ParityResidualEncoderUNet, SameParametersAndOutputsAsDynamicNetworkArchitectures) {
  MLSEG_REQUIRE_PEER();
  testing::TempDir tmp;
  const auto peer = parity::run_peer("residual_encoder_unet.py", {(tmp / "peer").string()}, tmp / "peer");
  const auto architecture = read_json_file(peer.folder / "arch.json");
  const auto input_shape = peer.meta["input_shape"].get<std::vector<std::int64_t>>();
  ResidualEncoderUNet net(residual_encoder_unet_options(architecture, input_shape[1], 3, /*deep_supervision=*/true, "arch."));

  // The parameter names and shapes of the Python module, nothing more, nothing less.
  const auto names = peer.meta["names"].get<std::vector<std::string>>();
  std::set<std::string> ours;
  for (const auto& p : net->named_parameters()) ours.insert(p.key());
  EXPECT_EQ(ours, std::set<std::string>(names.begin(), names.end()));

  // mlseg's initialisation is nnU-Net's: every block's last norm at 0, the other norms at 1 / 0, He-normal convs.
  for (const auto& p : net->named_parameters()) {
    const torch::Tensor expected = peer.array("init/" + p.key());
    if (p.key().find("conv2.norm.") != std::string::npos) {
      EXPECT_EQ(p.value().abs().max().item<double>(), 0.0) << p.key();
      EXPECT_EQ(expected.abs().max().item<double>(), 0.0) << p.key();
    } else if (p.key().find("norm.weight") != std::string::npos) {
      EXPECT_TRUE(torch::equal(p.value(), expected)) << p.key();
    } else if (p.key().find(".weight") != std::string::npos && p.value().numel() >= 1000) {
      // kaiming_normal_(a = 1e-2): fan_in = size(1) x kernel = numel / size(0), also for transposed convs.
      const double fan_in = static_cast<double>(p.value().numel() / p.value().size(0));
      const double he_std = std::sqrt(2.0 / (1.0 + 1e-4) / fan_in);
      EXPECT_NEAR(p.value().std().item<double>() / he_std, 1.0, 0.15) << p.key();
    }
  }

  NamedTensors weights;
  for (const auto& name : names) weights.emplace_back(name, peer.array("weights/" + name));
  load_named_tensors(*net, weights, "peer weights");
  net->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  const auto outputs = net->forward(peer.array("input").to(torch::kDouble));
  ASSERT_EQ(static_cast<int>(outputs.size()), peer.meta["num_outputs"].get<int>());
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const torch::Tensor expected = peer.array("output_" + std::to_string(k));
    ASSERT_EQ(outputs[k].sizes(), expected.sizes()) << "deep-supervision level " << k;
    const double error = parity::relative_error(outputs[k], expected);
    std::cout << "[parity] ResidualEncoderUNet output " << k << " " << outputs[k].sizes() << ": max relative error " << error << "\n";
    EXPECT_LE(error, kOutputTolerance) << "deep-supervision level " << k;
  }
}

}  // namespace
}  // namespace mlseg
