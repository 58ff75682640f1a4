// The checkpoint format: round trip of parameters, optimizer state and metadata; clear errors.
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <fstream>

#include "mlseg/core/error.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/nn/residual_encoder_unet.h"
#include "test_support.h"

namespace {

using namespace mlseg;

using Json = nlohmann::ordered_json;

ModelDescription tiny_model() {
  ModelDescription model;
  model.configuration = "3d_fullres";
  model.input_channels = 1;
  model.num_outputs = 2;
  model.encoding = LabelEncoding::sigmoid(2);
  model.channel_names = {"a", "b"};
  model.mirror_axes = {0, 1, 2};
  Json plans = {{"label_encoding", "sigmoid"},
                {"channel_names", {"a", "b"}},
                {"transpose_forward", {0, 1, 2}},
                {"transpose_backward", {0, 1, 2}},
                {"configurations",
                 {{"3d_fullres",
                   {{"patch_size", {8, 8, 8}},
                    {"spacing", {1.0, 1.0, 1.0}},
                    {"batch_size", 2},
                    {"normalization_schemes", {"ZScoreNormalization"}},
                    {"use_mask_for_norm", {false}},
                    {"architecture",
                     {{"arch_kwargs",
                       {{"n_stages", 2},
                        {"conv_op", "torch.nn.modules.conv.Conv3d"},
                        {"features_per_stage", {4, 8}},
                        {"kernel_sizes", {{3, 3, 3}, {3, 3, 3}}},
                        {"strides", {{1, 1, 1}, {2, 2, 2}}},
                        {"n_conv_per_stage", {1, 1}},
                        {"n_conv_per_stage_decoder", {1}}}}}}}}}}};
  model.plans = plans_from_json(plans, "checkpoint_test plans");
  return model;
}

TEST(Checkpoint, RoundTripsParametersOptimizerAndMetadata) {
  mlseg::testing::TempDir dir;
  const ModelDescription model = tiny_model();
  SegmentationNetwork network = build_network(model, true);
  torch::optim::SGD optimizer(network->module().parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const torch::Tensor x = torch::randn({1, 1, 8, 8, 8});
  network->forward(x)[0].sum().backward();
  optimizer.step();
  const auto path = dir / "fold_0" / "checkpoint_latest.pt";
  save_checkpoint(path, *network, model, {{"training", {{"next_epoch", 3}}}}, &optimizer);
  ASSERT_TRUE(std::filesystem::exists(path));

  LoadedCheckpoint loaded = load_checkpoint(path);
  EXPECT_TRUE(loaded.has_optimizer_state);
  EXPECT_EQ(loaded.model.channel_names, model.channel_names);
  EXPECT_EQ(loaded.model.mirror_axes, model.mirror_axes);
  EXPECT_EQ(loaded.metadata["training"]["next_epoch"], 3);
  EXPECT_EQ(loaded.metadata["format"], kCheckpointFormat);
  EXPECT_FALSE(loaded.network->deep_supervision());
  auto original = network->module().named_parameters();
  for (const auto& item : loaded.network->module().named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), original[item.key()])) << item.key();
  }
  torch::optim::SGD restored(loaded.network->module().parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  load_optimizer_state(path, restored);
  EXPECT_EQ(read_checkpoint_metadata(path)["model"]["label_encoding"], "sigmoid");
}

// The checkpoint rebuilds the plans' network class (the factory), so a ResidualEncoderUNet comes
// back as one, its parameters by name.
TEST(Checkpoint, ResidualEncoderUNetRoundTrips) {
  mlseg::testing::TempDir dir;
  ModelDescription model = tiny_model();
  Json& architecture = model.plans.json["configurations"]["3d_fullres"]["architecture"];
  architecture["network_class_name"] = kResidualEncoderUNetClass;
  architecture["arch_kwargs"].erase("n_conv_per_stage");
  architecture["arch_kwargs"]["n_blocks_per_stage"] = {1, 2};
  torch::manual_seed(2);
  SegmentationNetwork network = build_network(model, false);
  ASSERT_NE(network.as<ResidualEncoderUNetImpl>(), nullptr);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : network->module().parameters()) p.uniform_(-0.5, 0.5);  // the zeroed norms too
  }
  save_checkpoint(dir / "final.pt", *network, model, {}, nullptr);
  const LoadedCheckpoint loaded = load_checkpoint(dir / "final.pt");
  ASSERT_NE(loaded.network.as<ResidualEncoderUNetImpl>(), nullptr);
  EXPECT_EQ(loaded.network->class_name(), kResidualEncoderUNetClass);
  auto original = network->module().named_parameters();
  ASSERT_EQ(loaded.network->module().named_parameters().size(), original.size());
  for (const auto& item : loaded.network->module().named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), original[item.key()])) << item.key();
  }
}

TEST(Checkpoint, BadFilesGiveClearErrors) {
  mlseg::testing::TempDir dir;
  try {
    load_checkpoint(dir / "missing.pt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos);
    EXPECT_NE(e.where().file.find("missing.pt"), std::string::npos);
  }
  std::ofstream(dir / "junk.pt") << "not a checkpoint";
  EXPECT_THROW(load_checkpoint(dir / "junk.pt"), Error);
  // Inference-only checkpoints have no optimizer state to resume from.
  const ModelDescription model = tiny_model();
  SegmentationNetwork network = build_network(model, false);
  save_checkpoint(dir / "final.pt", *network, model, {}, nullptr);
  EXPECT_FALSE(load_checkpoint(dir / "final.pt").has_optimizer_state);
  torch::optim::SGD optimizer(network->module().parameters(), torch::optim::SGDOptions(0.1));
  EXPECT_THROW(load_optimizer_state(dir / "final.pt", optimizer), Error);
}

// The plans inside a checkpoint pass plans.json's checks on load: a damaged one is refused there,
// naming the checkpoint and the key, not later in the middle of a prediction.
TEST(Checkpoint, DamagedEmbeddedPlansAreRefusedOnLoad) {
  mlseg::testing::TempDir dir;
  ModelDescription model = tiny_model();
  SegmentationNetwork network = build_network(model, false);
  model.plans.json["configurations"]["3d_fullres"]["spacing"] = {1.0, -1.0, 1.0};
  save_checkpoint(dir / "damaged.pt", *network, model, {}, nullptr);
  try {
    load_checkpoint(dir / "damaged.pt");
    FAIL() << "a checkpoint with a negative planned spacing loaded";
  } catch (const Error& e) {
    const std::string text = e.what();
    EXPECT_NE(text.find("configurations.3d_fullres.spacing"), std::string::npos) << text;
    EXPECT_NE(text.find("damaged.pt"), std::string::npos) << text;
  }
}

}  // namespace
