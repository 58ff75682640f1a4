// nnU-Net v2 checkpoints read without Python (issue #19): a checkpoint_final.pth written by
// nnU-Net's own nnUNetTrainer.save_checkpoint (peer: tests/parity/peer/nnunet_checkpoint.py) is read
// by mlseg's torch.save reader, its weights load by name into mlseg's PlainConvUNet built from the
// same plans, and the network's output equals nnU-Net's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/nn/nnunet_checkpoint.h"
#include "mlseg/nn/state_dict.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

constexpr double kOutputTolerance = 1e-10;  // float64 forward of identical weights: rounding only

TEST(ParityNnunetCheckpoint, SaveCheckpointIsReadAndRunsLikeNnUNet) {
  MLSEG_REQUIRE_PEER();
  testing::TempDir tmp;
  for (const std::string mode : {"labels", "regions"}) {
    const auto peer = parity::run_peer("nnunet_checkpoint.py", {mode, (tmp / mode).string()}, tmp / mode);
    const NnunetCheckpoint checkpoint = read_nnunet_checkpoint(peer.folder / "checkpoint_final.pth");

    // Every weight, in the state dict's order, without nnU-Net's duplicate keys, bit for bit.
    const auto names = peer.meta["names"].get<std::vector<std::string>>();
    ASSERT_EQ(checkpoint.network_weights.size(), names.size()) << mode;
    for (std::size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(checkpoint.network_weights[i].first, names[i]);
      EXPECT_TRUE(torch::equal(checkpoint.network_weights[i].second, peer.array("weights/" + names[i]))) << names[i];
    }
    EXPECT_FALSE(peer.meta["dropped"].empty()) << "nnU-Net's state dict repeats the encoder under decoder.encoder";
    EXPECT_EQ(checkpoint.trainer_name, peer.meta["trainer_name"].get<std::string>());
    ASSERT_TRUE(checkpoint.inference_allowed_mirroring_axes.has_value());
    EXPECT_EQ(*checkpoint.inference_allowed_mirroring_axes, peer.meta["mirroring_axes"].get<std::vector<int>>());
    EXPECT_EQ(checkpoint.configuration, peer.meta["configuration"].get<std::string>());
    EXPECT_EQ(checkpoint.epochs_trained, peer.meta["current_epoch"].get<std::int64_t>());

    // By name into mlseg's PlainConvUNet from the same plans; the same output as nnU-Net's network.
    const auto plans = read_json_file(peer.folder / "plans.json");
    const int outputs = peer.meta["num_outputs"].get<int>();
    PlainConvUNet net(plain_conv_unet_options_from_plans(plans, "3d_fullres", 1, outputs, /*deep_supervision=*/false));
    load_named_tensors(*net, checkpoint.network_weights, (peer.folder / "checkpoint_final.pth").string());
    net->eval();
    net->to(torch::kDouble);
    torch::NoGradGuard no_grad;
    const torch::Tensor output = net->forward(peer.array("input").to(torch::kDouble)).front();
    const double error = parity::relative_error(output, peer.array("output"));
    std::cout << "[parity] nnU-Net checkpoint (" << mode << "): " << names.size() << " tensors read, output max relative error "
              << error << "\n";
    EXPECT_LE(error, kOutputTolerance) << mode;

    // A network of other plans is refused, naming what does not fit.
    PlainConvUNet other(plain_conv_unet_options_from_plans(plans, "3d_fullres", 1, outputs + 1, false));
    try {
      load_named_tensors(*other, checkpoint.network_weights, "ckpt");
      ADD_FAILURE() << "weights of " << outputs << " outputs loaded into a network of " << outputs + 1;
    } catch (const Error& e) {
      EXPECT_NE(e.problem().find("seg_layers"), std::string::npos) << e.problem();
    }
    NamedTensors missing_one(checkpoint.network_weights.begin() + 1, checkpoint.network_weights.end());
    missing_one.emplace_back("decoder.extra.weight", torch::zeros({1}));
    try {
      load_named_tensors(*net, missing_one, "ckpt");
      ADD_FAILURE() << "a state dict with a key missing and one unexpected was loaded";
    } catch (const Error& e) {
      EXPECT_NE(e.problem().find("1 missing (" + names[0] + ")"), std::string::npos) << e.problem();
      EXPECT_NE(e.problem().find("1 unexpected (decoder.extra.weight)"), std::string::npos) << e.problem();
    }
  }
}

TEST(ParityNnunetCheckpoint, ATruncatedCheckpointIsRefusedByName) {
  MLSEG_REQUIRE_PEER();
  testing::TempDir tmp;
  const auto peer = parity::run_peer("nnunet_checkpoint.py", {"labels", (tmp / "peer").string()}, tmp / "peer");
  const auto whole = peer.folder / "checkpoint_final.pth";
  const auto size = std::filesystem::file_size(whole);
  for (const double fraction : {0.1, 0.5, 0.9, 0.999}) {
    const auto cut = tmp / "cut.pth";
    std::filesystem::copy_file(whole, cut, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(cut, static_cast<std::uintmax_t>(fraction * static_cast<double>(size)));
    try {
      read_nnunet_checkpoint(cut);
      ADD_FAILURE() << "a checkpoint cut at " << fraction << " of its size was read";
    } catch (const Error& e) {
      EXPECT_EQ(e.where().file, cut.string());
    }
  }
}

}  // namespace
}  // namespace mlseg
