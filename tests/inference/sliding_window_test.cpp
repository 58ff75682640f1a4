// Sliding window: nnU-Net's step rule and importance map, exact reconstruction through networks
// that compute known functions, mirroring and model averaging, and a real PlainConvUNet.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/inference/sliding_window.h"
#include "mlseg/nn/plain_conv_unet.h"

namespace {

using namespace mlseg;

TEST(SlidingWindowSteps, FollowNnUNetsRule) {
  // n = ceil((160 - 64) / 32) + 1 = 4, step 32.
  EXPECT_EQ(sliding_window_steps(160, 64, 0.5), (std::vector<std::int64_t>{0, 32, 64, 96}));
  // n = ceil(36 / 32) + 1 = 3, spread evenly: step 18.
  EXPECT_EQ(sliding_window_steps(100, 64, 0.5), (std::vector<std::int64_t>{0, 18, 36}));
  EXPECT_EQ(sliding_window_steps(65, 64, 0.5), (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(sliding_window_steps(64, 64, 0.5), (std::vector<std::int64_t>{0}));
  EXPECT_EQ(sliding_window_steps(30, 64, 0.5), (std::vector<std::int64_t>{0}));
  // Step 1 (no overlap): n = ceil(96 / 64) + 1 = 3, step 48.
  EXPECT_EQ(sliding_window_steps(160, 64, 1.0), (std::vector<std::int64_t>{0, 48, 96}));
  // 10 - 4 = 6 over n = ceil(6 / 2) + 1 = 4 positions: 0, 2, 4, 6.
  EXPECT_EQ(sliding_window_steps(10, 4, 0.5), (std::vector<std::int64_t>{0, 2, 4, 6}));
  // Half-way values round to even as np.round: 7 - 2 = 5 over n = ceil(5 / 1) + 1 = 6 → 0..5;
  // 9 - 4 = 5 over n = ceil(5 / 2) + 1 = 4 → step 5/3: 0, 1.67, 3.33, 5 → 0, 2, 3, 5.
  EXPECT_EQ(sliding_window_steps(9, 4, 0.5), (std::vector<std::int64_t>{0, 2, 3, 5}));
  // A tile of one voxel (2D network along z) visits every slice.
  EXPECT_EQ(sliding_window_steps(3, 1, 0.5), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_THROW(sliding_window_steps(10, 4, 0.0), Error);
  EXPECT_THROW(sliding_window_steps(10, 4, 1.5), Error);
}

TEST(GaussianImportanceMap, MaximumAtTheCentreScaledAndPositive) {
  const torch::Tensor map = gaussian_importance_map({8, 16, 12}, 1.0 / 8, 10.0);
  ASSERT_EQ(map.sizes(), (std::vector<std::int64_t>{8, 16, 12}));
  EXPECT_EQ(map.scalar_type(), torch::kFloat);
  EXPECT_NEAR(map.max().item<float>(), 10.0f, 1e-5);
  EXPECT_NEAR(map[4][8][6].item<float>(), 10.0f, 1e-5) << "maximum at tile // 2";
  EXPECT_GT(map.min().item<float>(), 0.0f);
  // Separable Gaussian with σ = tile / 8: one step along x from the centre scales by exp(-0.5 / 1.5²).
  EXPECT_NEAR(map[4][8][7].item<float>() / 10.0f, std::exp(-0.5 / (1.5 * 1.5)), 1e-5);
  // Along z (σ = 1) two steps: exp(-2).
  EXPECT_NEAR(map[6][8][6].item<float>() / 10.0f, std::exp(-2.0), 1e-5);
  // Symmetric about the centre where both sides exist.
  EXPECT_NEAR(map[4][8][5].item<float>(), map[4][8][7].item<float>(), 1e-6);
  // Max 1 scaling.
  EXPECT_NEAR(gaussian_importance_map({8, 8, 8}, 1.0 / 8, 1.0).max().item<float>(), 1.0f, 1e-6);
}

TEST(GaussianImportanceMap, ZerosBeyondTheTruncationBecomeTheMinimum) {
  // σ = 64 · 1/32 = 2, truncated at 4σ = 8 voxels: most of the tile is beyond it.
  const torch::Tensor map = gaussian_importance_map({1, 1, 64}, 1.0 / 32, 10.0);
  const float edge = map[0][0][0].item<float>();
  EXPECT_GT(edge, 0.0f);
  EXPECT_FLOAT_EQ(edge, map.min().item<float>());
  EXPECT_FLOAT_EQ(edge, map[0][0][32 + 8].item<float>()) << "the last voxel inside the truncation is the smallest nonzero";
}

TEST(MirrorCombinations, EveryNonEmptySubsetInItertoolsOrder) {
  const auto all = mirror_combinations({0, 1, 2});
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all[0], (std::vector<std::int64_t>{2}));
  EXPECT_EQ(all[2], (std::vector<std::int64_t>{4}));
  EXPECT_EQ(all[3], (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(all[6], (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(mirror_combinations({1, 2}).size(), 3u);
  EXPECT_TRUE(mirror_combinations({}).empty());
  EXPECT_THROW(mirror_combinations({3}), Error);
}

// A pointwise function of the input reconstructs exactly, whatever the tiling.
torch::Tensor expected_affine(const torch::Tensor& image) { return image * 2.0 + 1.0; }

struct ShapeCase {
  std::vector<std::int64_t> patch;
  std::array<std::int64_t, 3> shape;
};

class SlidingWindowReconstruction : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(SlidingWindowReconstruction, PointwiseNetworkGivesItsFunctionBack) {
  const ShapeCase& c = GetParam();
  torch::manual_seed(3);
  const torch::Tensor image = torch::randn({2, c.shape[0], c.shape[1], c.shape[2]});
  int calls = 0;
  std::vector<std::int64_t> seen_tile;
  TileForward affine = [&](const torch::Tensor& tiles) {
    ++calls;
    seen_tile = tiles.sizes().vec();
    return tiles * 2.0 + 1.0;
  };
  for (bool gaussian : {true, false}) {
    for (int batch : {1, 3}) {
      SlidingWindowOptions options(c.patch);
      options.use_gaussian(gaussian).tile_batch(batch).mirror_axes({0, 1, 2});
      const torch::Tensor logits = sliding_window_logits(std::vector<TileForward>{affine}, image, options);
      ASSERT_EQ(logits.sizes(), image.sizes());
      EXPECT_TRUE(torch::allclose(logits, expected_affine(image), 1e-5, 1e-5))
          << "max error " << (logits - expected_affine(image)).abs().max().item<float>();
    }
  }
  // The tile seen by the network is the patch (padded where the image is smaller).
  ASSERT_EQ(seen_tile.size(), 5u);
  if (c.patch.size() == 3) {
    EXPECT_EQ(seen_tile[2], c.patch[0]);
    EXPECT_EQ(seen_tile[3], c.patch[1]);
    EXPECT_EQ(seen_tile[4], c.patch[2]);
  } else {
    EXPECT_EQ(seen_tile[2], 1);
    EXPECT_EQ(seen_tile[3], c.patch[0]);
  }
}

INSTANTIATE_TEST_SUITE_P(SmallerEqualLarger2D3D, SlidingWindowReconstruction,
                         ::testing::Values(ShapeCase{{8, 8, 8}, {5, 6, 7}},        // smaller: padded
                                           ShapeCase{{8, 8, 8}, {8, 8, 8}},        // equal: one tile
                                           ShapeCase{{8, 8, 8}, {19, 13, 8}},      // larger, uneven
                                           ShapeCase{{4, 8, 6}, {3, 20, 6}},       // mixed
                                           ShapeCase{{8, 8}, {3, 5, 7}},           // 2D, smaller
                                           ShapeCase{{8, 8}, {1, 8, 8}},           // 2D, equal
                                           ShapeCase{{8, 8}, {4, 21, 17}}));       // 2D, larger, slices

TEST(SlidingWindow, TileCountMirrorsAndModelsAreAveraged) {
  const torch::Tensor image = torch::rand({1, 12, 12, 12});
  int calls_a = 0, calls_b = 0;
  TileForward a = [&](const torch::Tensor& t) { ++calls_a; return t * 3.0; };
  TileForward b = [&](const torch::Tensor& t) { ++calls_b; return t * 1.0 - 2.0; };
  SlidingWindowOptions options({8, 8, 8});
  options.mirror_axes({0, 2}).tile_batch(2);
  const torch::Tensor logits = sliding_window_logits({a, b}, image, options);
  // Average of the two models: (3x + x - 2) / 2 = 2x - 1.
  EXPECT_TRUE(torch::allclose(logits, image * 2.0 - 1.0, 1e-5, 1e-5));
  // 12 - 8 = 4 at step 4: 2 positions per axis → 8 tiles in 4 batches of 2; each batch is
  // predicted plain and with 3 mirror combinations (z, x, zx).
  EXPECT_EQ(calls_a, 4 * 4);
  EXPECT_EQ(calls_b, 4 * 4);
}

TEST(SlidingWindow, MirroringUndoesTheFlipOfTheOutput) {
  // A network that is not flip-equivariant: adds a ramp along x. With mirroring over x, the
  // average of ramp and flipped ramp is the ramp's mean; without, the ramp itself.
  const torch::Tensor image = torch::zeros({1, 4, 4, 6});
  const torch::Tensor ramp = torch::arange(6, torch::kFloat).view({1, 1, 1, 1, 6});
  TileForward add_ramp = [&](const torch::Tensor& t) { return t + ramp; };
  SlidingWindowOptions options({4, 4, 6});
  const torch::Tensor plain = sliding_window_logits({add_ramp}, image, options);
  EXPECT_TRUE(torch::allclose(plain[0][0][0], torch::arange(6, torch::kFloat)));
  options.mirror_axes({2});
  const torch::Tensor mirrored = sliding_window_logits({add_ramp}, image, options);
  EXPECT_TRUE(torch::allclose(mirrored, torch::full_like(mirrored, 2.5)));
}

TEST(SlidingWindow, ForwardWithAnotherShapeIsAnError) {
  TileForward shrink = [](const torch::Tensor& t) { return t.slice(4, 0, 2); };
  EXPECT_THROW(sliding_window_logits({shrink}, torch::zeros({1, 4, 4, 4}), SlidingWindowOptions({4, 4, 4})), Error);
  EXPECT_THROW(sliding_window_logits(std::vector<TileForward>{}, torch::zeros({1, 4, 4, 4}), SlidingWindowOptions({4, 4, 4})), Error);
}

PlainConvUNet tiny_unet(int dimension, std::int64_t outputs) {
  PlainConvUNetOptions options(1, outputs);
  std::vector<std::int64_t> k(static_cast<std::size_t>(dimension), 3), one(static_cast<std::size_t>(dimension), 1),
      two(static_cast<std::size_t>(dimension), 2);
  options.dimension(dimension).n_stages(2).features_per_stage({4, 8}).kernel_sizes({k, k}).strides({one, two}).deep_supervision(true);
  return PlainConvUNet(options);
}

TEST(SlidingWindow, OneTileEqualsTheNetworkAndRestoresItsMode) {
  torch::manual_seed(1);
  for (int dimension : {3, 2}) {
    PlainConvUNet network = tiny_unet(dimension, 3);
    network->train();
    const torch::Tensor image = torch::randn({1, dimension == 3 ? 8 : 1, 8, 8});
    SlidingWindowOptions options(dimension == 3 ? std::vector<std::int64_t>{8, 8, 8} : std::vector<std::int64_t>{8, 8});
    const torch::Tensor logits = sliding_window_logits(std::vector<SegmentationNetwork>{network}, image, options);
    EXPECT_TRUE(network->is_training());
    EXPECT_TRUE(network->deep_supervision());
    torch::NoGradGuard no_grad;
    network->eval();
    network->set_deep_supervision(false);
    const torch::Tensor direct = dimension == 3 ? network->forward(image.unsqueeze(0)).front()[0]
                                                : network->forward(image).front().permute({1, 0, 2, 3});
    ASSERT_EQ(logits.sizes(), direct.sizes());
    EXPECT_TRUE(torch::allclose(logits, direct, 1e-4, 1e-5));
  }
}

TEST(SlidingWindow, RealNetworkOverManyTilesIsSmoothAndFinite) {
  torch::manual_seed(2);
  PlainConvUNet network = tiny_unet(3, 2);
  const torch::Tensor image = torch::randn({1, 13, 17, 11});
  SlidingWindowOptions options({8, 8, 8});
  options.mirror_axes({0, 1, 2}).tile_batch(4);
  const torch::Tensor logits = sliding_window_logits(std::vector<SegmentationNetwork>{network, network}, image, options);
  ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{2, 13, 17, 11}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  // Two copies of one model average to that model.
  const torch::Tensor single = sliding_window_logits(std::vector<SegmentationNetwork>{network}, image, options);
  EXPECT_TRUE(torch::allclose(logits, single, 1e-5, 1e-5));
}

}  // namespace
