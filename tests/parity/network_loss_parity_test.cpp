// Parity (c): mlseg's PlainConvUNet, deep-supervision loss and SGD step against nnU-Net's
// nnUNetTrainer (initialize + train_step) from nnU-Net's own initial weights, for sigmoid regions
// (DC_and_BCE_loss) and softmax labels (DC_and_CE_loss). Peer: tests/parity/peer/network_loss.py.
//
// Float32 gradients of this network differ by ~3e-4 (relative) between two nnU-Net runs with 1 and
// 2 threads (summation order), so gradients and the SGD step are compared in float64 on both sides,
// where the 1e-4 is meaningful; the float32 run checks the forward outputs and the loss.
#include <gtest/gtest.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "mlseg/data/deep_supervision.h"
#include "mlseg/io/json_file.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/training/loss_deep_supervision.h"
#include "mlseg/training/optimizer.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

using parity::relative_error;

// The tolerances: outputs relative 1e-4, loss 1e-5, gradients 1e-4.
constexpr double kOutputTolerance = 1e-4;
constexpr double kLossTolerance = 1e-5;
constexpr double kGradientTolerance = 1e-4;
// Initial weights are random on both sides: per tensor, the means and standard deviations must agree
// within this many standard errors (a tensor of n values: the ratio of the two standard deviations
// has a standard error of about 1/sqrt(n)).
constexpr double kInitialisationZ = 5.0;

// mlseg's fresh initialisation (InitWeights_He(1e-2) on every conv and transposed conv, zero biases,
// InstanceNorm weight 1 and bias 0) against nnU-Net's initial weights, tensor by tensor: equal
// distributions, not equal values (each side draws its own).
void check_initialisation(PlainConvUNet& net, const parity::PeerOutput& peer, const std::string& mode) {
  auto params = net->named_parameters(true);
  double worst_z = 0;
  std::size_t compared = 0;
  for (const auto& name_json : peer.meta["params"]) {
    const std::string name = name_json.get<std::string>();
    const auto* p = params.find(name);
    ASSERT_NE(p, nullptr) << name;
    const torch::Tensor ours = p->detach().to(torch::kFloat64).flatten(), theirs = peer.array("init/" + name).to(torch::kFloat64).flatten();
    if (p->dim() <= 1) {  // biases (0) and InstanceNorm affine parameters (1): constants
      EXPECT_TRUE(torch::equal(ours, theirs)) << mode << ": initial " << name << " (nnUNetTrainer.initialize)";
      continue;
    }
    const double n = static_cast<double>(ours.numel());
    const double std_ours = ours.std().item<double>(), std_theirs = theirs.std().item<double>();
    const double std_z = std::abs(std_ours / std_theirs - 1.0) * std::sqrt(n);
    const double mean_z = std::abs(ours.mean().item<double>() - theirs.mean().item<double>()) /
                          std::sqrt((std_ours * std_ours + std_theirs * std_theirs) / n);
    worst_z = std::max({worst_z, std_z, mean_z});
    ++compared;
    EXPECT_LE(std_z, kInitialisationZ) << mode << ": initial " << name << " std " << std_ours << " vs nnU-Net " << std_theirs
                                       << " (InitWeights_He(1e-2), kaiming_normal_ fan_in)";
    EXPECT_LE(mean_z, kInitialisationZ) << mode << ": initial " << name << " mean";
  }
  std::cout << "[parity] " << mode << ": initial weights of " << compared << " conv tensors distributed as nnU-Net's (largest z " << worst_z
            << "); biases and norms equal\n";
}

// Every parameter's total update from nnU-Net's initial weights (now − init) against the peer's
// (`prefix`/name − init/name), relative to the largest peer update of that tensor. Returns the worst.
double worst_update_error(PlainConvUNet& net, const parity::PeerOutput& peer, const std::string& prefix, const std::string& what) {
  auto params = net->named_parameters(true);
  double worst = 0;
  for (const auto& name_json : peer.meta["params"]) {
    const std::string n = name_json.get<std::string>();
    const auto update = params[n].detach() - peer.array("init/" + n);
    const auto peer_update = peer.array(prefix + "/" + n) - peer.array("init/" + n);
    const double e = relative_error(update, peer_update, 1e-3 * peer_update.abs().max().item<double>() + 1e-12);
    worst = std::max(worst, e);
    EXPECT_LE(e, kGradientTolerance) << what << " of " << n;
  }
  return worst;
}

// The steps after the first, as mlseg's train_step takes them (deep_supervision_loss, backward,
// clip_gradient_norm, the SGD step with its momentum buffer), against nnUNetTrainer.train_step with
// PolyLR stepped per epoch: the total update from the initial weights.
void check_later_steps(PlainConvUNet& net, torch::optim::Optimizer& optimizer, const parity::PeerOutput& peer, const torch::Tensor& x,
                       const std::vector<torch::Tensor>& targets, const LossOptions& loss_options, const std::string& mode) {
  const OptimizerOptions optimizer_options;
  const auto steps = peer.meta["steps"].get<std::int64_t>();
  const auto& lrs = peer.meta["lrs"];
  for (std::int64_t step = 1; step < steps; ++step) {
    set_learning_rate(optimizer, poly_learning_rate(optimizer_options, step, 1000));
    EXPECT_DOUBLE_EQ(poly_learning_rate(optimizer_options, step, 1000), lrs[static_cast<std::size_t>(step)].get<double>())
        << "PolyLRScheduler at epoch " << step;
    optimizer.zero_grad();
    deep_supervision_loss(net->forward(x), targets, {}, loss_options).backward();
    clip_gradient_norm(net->parameters(), optimizer_options.gradient_clip_norm());
    optimizer.step();
  }
  const double worst = worst_update_error(net, peer, "after_steps", std::to_string(steps) + " SGD steps (nnUNetTrainer.train_step)");
  std::cout << "[parity] " << mode << " fp64: " << steps << " steps with momentum and PolyLR, total update max relative error " << worst
            << "\n";
}

// fp64: the gradients after backward, clip_grad_norm_ and the first SGD step, then the later steps.
void check_backward_and_steps(PlainConvUNet& net, const parity::PeerOutput& peer, torch::Tensor& loss, const torch::Tensor& x,
                              const std::vector<torch::Tensor>& targets, const LossOptions& loss_options, const std::string& mode) {
  auto params = net->named_parameters(true);
  const auto& names = peer.meta["params"];
  double worst_gradient = 0;
  // Gradients after backward (before clipping), per parameter.
  loss.backward();
  std::set<std::string> without_grad;
  for (const auto& n : peer.meta["params_without_grad"]) without_grad.insert(n.get<std::string>());
  // Conv biases followed by InstanceNorm have a gradient of exactly 0 in exact arithmetic (the
  // norm removes the mean): both sides hold rounding noise there, compared against this floor.
  std::map<std::string, torch::Tensor> peer_gradients;
  double largest_gradient = 0;
  for (const auto& name : names) {
    const auto& g = peer_gradients[name.get<std::string>()] = peer.array("grad/" + name.get<std::string>());
    largest_gradient = std::max(largest_gradient, g.abs().max().item<double>());
  }
  const double gradient_floor = 1e-3 * largest_gradient;
  for (const auto& name : names) {
    const auto& p = params[name.get<std::string>()];
    if (without_grad.count(name.get<std::string>())) {
      EXPECT_TRUE(!p.grad().defined() || p.grad().abs().max().item<double>() == 0)
          << name << ": nnU-Net computes no gradient for the head of a weight-0 output";
      continue;
    }
    ASSERT_TRUE(p.grad().defined()) << name;
    const double e = relative_error(p.grad(), peer_gradients[name.get<std::string>()], gradient_floor);
    worst_gradient = std::max(worst_gradient, e);
    EXPECT_LE(e, kGradientTolerance) << "gradient of " << name << " after nnUNetTrainer.train_step's loss.backward()";
  }

  // clip_grad_norm_(12) and one SGD step (lr 1e-2, momentum 0.99, Nesterov, weight decay 3e-5):
  // the update (after − before) of every parameter.
  const OptimizerOptions optimizer_options;
  const double norm = torch::nn::utils::clip_grad_norm_(net->parameters(), optimizer_options.gradient_clip_norm());
  EXPECT_NEAR(norm, peer.meta["grad_norm"].get<double>(), kGradientTolerance * peer.meta["grad_norm"].get<double>())
      << "clip_grad_norm_ in nnUNetTrainer.train_step";
  auto optimizer = make_optimizer(*net, optimizer_options);
  set_learning_rate(*optimizer, poly_learning_rate(optimizer_options, 0, 1000));
  EXPECT_DOUBLE_EQ(poly_learning_rate(optimizer_options, 0, 1000), peer.meta["lr"].get<double>());
  optimizer->step();
  const double worst_update = worst_update_error(net, peer, "after", "SGD step (nnUNetTrainer.configure_optimizers)");
  std::cout << "[parity] " << mode << " fp64: gradients max relative error " << worst_gradient << ", SGD updates " << worst_update << "\n";

  check_later_steps(net, *optimizer, peer, x, targets, loss_options, mode);
}

void check_train_step(const std::string& mode, bool fp64) {
  testing::TempDir tmp;
  const auto peer = parity::run_peer("network_loss.py", {mode, fp64 ? "fp64" : "fp32", (tmp / "peer").string()}, tmp / "peer");
  const auto dtype = fp64 ? torch::kFloat64 : torch::kFloat32;
  const auto plans = read_json_file(peer.folder / "plans.json");
  const bool regions = mode == "regions";

  // The network from nnU-Net's plans (get_network_from_plans), with nnU-Net's initial weights.
  PlainConvUNet net(plain_conv_unet_options_from_plans(plans, "3d_fullres", 1, regions ? 3 : 4, /*deep_supervision=*/true));
  if (!fp64) check_initialisation(net, peer, mode);
  auto params = net->named_parameters(true);
  const auto& names = peer.meta["params"];
  ASSERT_EQ(params.size(), names.size()) << "mlseg's PlainConvUNet has another parameter count than nnU-Net's";
  {
    torch::NoGradGuard no_grad;
    for (const auto& name : names) {
      auto* p = params.find(name.get<std::string>());
      ASSERT_NE(p, nullptr) << "nnU-Net's parameter " << name << " has no counterpart of that name in mlseg";
      const auto w = peer.array("init/" + name.get<std::string>());
      ASSERT_EQ(p->sizes(), w.sizes()) << name;
      p->copy_(w);
    }
  }

  net->to(dtype);

  // Forward in training mode, every deep-supervision output.
  net->train();
  const auto x = peer.array("data").to(dtype);
  auto outputs = net->forward(x);
  ASSERT_EQ(outputs.size(), peer.meta["num_outputs"].get<std::size_t>());
  std::vector<torch::Tensor> targets;
  double worst_output = 0;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const double e = relative_error(outputs[k], peer.array("output_" + std::to_string(k)));
    worst_output = std::max(worst_output, e);
    EXPECT_LE(e, kOutputTolerance) << "PlainConvUNet.forward (dynamic_network_architectures unet.py) deep-supervision output " << k;
    auto target = peer.array("target_" + std::to_string(k));
    targets.push_back(target.is_floating_point() ? target.to(dtype) : target);
  }

  // Deep-supervision targets: nnU-Net's DownsampleSegForDSTransform (nearest-exact) = mlseg's
  // nearest_exact_indices on the full-resolution target.
  for (std::size_t k = 1; k < targets.size(); ++k) {
    auto down = targets[0];
    for (int axis = 0; axis < 3; ++axis) {
      const auto idx = nearest_exact_indices(targets[0].size(axis + 2), targets[k].size(axis + 2));
      down = down.index_select(axis + 2, torch::tensor(idx, torch::kLong));
    }
    EXPECT_TRUE(torch::equal(down, targets[k])) << "DownsampleSegForDSTransform scale " << k;
  }

  // Loss: DeepSupervisionWrapper(DC_and_BCE_loss | DC_and_CE_loss), weights 1/2^i, last 0, normalised.
  const auto weights = deep_supervision_weights(outputs.size());
  for (std::size_t k = 0; k < weights.size(); ++k) {
    EXPECT_NEAR(weights[k], peer.meta["ds_weights"][k].get<double>(), 1e-12) << "nnUNetTrainer._build_loss weights";
  }
  LossOptions loss_options;
  loss_options.kind(regions ? LossKind::bce_and_dice : LossKind::ce_and_dice);
  auto loss = deep_supervision_loss(outputs, targets, {}, loss_options);
  EXPECT_NEAR(loss.item<double>(), peer.meta["loss"].get<double>(), kLossTolerance)
      << "nnUNetTrainer.train_step loss (" << peer.meta["loss_class"].get<std::string>() << ")";
  std::cout << "[parity] " << mode << (fp64 ? " fp64" : " fp32") << ": outputs max relative error " << worst_output << ", loss "
            << loss.item<double>() << " vs nnU-Net " << peer.meta["loss"].get<double>() << "\n";
  if (!fp64) return;

  check_backward_and_steps(net, peer, loss, x, targets, loss_options, mode);
}

TEST(ParityNetworkLoss, SigmoidRegionsFloat32ForwardAndLossMatchNnUNetTrainer) {
  MLSEG_REQUIRE_PEER();
  check_train_step("regions", false);
}

TEST(ParityNetworkLoss, SoftmaxLabelsFloat32ForwardAndLossMatchNnUNetTrainer) {
  MLSEG_REQUIRE_PEER();
  check_train_step("labels", false);
}

TEST(ParityNetworkLoss, SigmoidRegionsTrainStepMatchesNnUNetTrainerInFloat64) {
  MLSEG_REQUIRE_PEER();
  check_train_step("regions", true);
}

TEST(ParityNetworkLoss, SoftmaxLabelsTrainStepMatchesNnUNetTrainerInFloat64) {
  MLSEG_REQUIRE_PEER();
  check_train_step("labels", true);
}

}  // namespace
}  // namespace mlseg
