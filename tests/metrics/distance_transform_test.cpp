// Exact EDT against brute force, with anisotropic spacing and several threads.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "mlseg/metrics/distance_transform.h"
#include "mlseg/metrics/tensor_metrics.h"

namespace mlseg {
namespace {

TEST(MetricsDistanceTransform, MatchesBruteForceAnisotropic) {
  const std::array<std::int64_t, 3> shape{7, 9, 11};
  const std::array<double, 3> spacing{2.5, 0.7, 1.3};
  std::mt19937 rng(11);
  std::vector<std::uint8_t> features(7 * 9 * 11, 0);
  for (auto& f : features) f = rng() % 17 == 0;
  for (int threads : {1, 3}) {
    const std::vector<double> squared = squared_distance_transform(features.data(), shape, spacing, threads);
    for (std::int64_t i = 0; i < 7 * 9 * 11; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < 7 * 9 * 11; ++j) {
        if (!features[j]) continue;
        const double dz = (i / 99 - j / 99) * spacing[0], dy = ((i / 11) % 9 - (j / 11) % 9) * spacing[1],
                     dx = (i % 11 - j % 11) * spacing[2];
        best = std::min(best, dz * dz + dy * dy + dx * dx);
      }
      ASSERT_NEAR(squared[i], best, 1e-9) << "voxel " << i << " threads " << threads;
    }
  }
}

TEST(MetricsDistanceTransform, SingleFeatureAndNoFeature) {
  torch::Tensor features = torch::zeros({3, 4, 5}, torch::kUInt8);
  features[0][0][0] = 1;
  const torch::Tensor d = distance_transform_mm(features, {2.0, 1.0, 0.5});
  EXPECT_DOUBLE_EQ(d[2][3][4].item<double>(), std::sqrt(16.0 + 9.0 + 4.0));
  EXPECT_DOUBLE_EQ(d[0][0][0].item<double>(), 0.0);
  const torch::Tensor none = distance_transform_mm(torch::zeros({2, 2, 2}), {1.0, 1.0, 1.0});
  EXPECT_TRUE(std::isinf(none[1][1][1].item<double>()));
}

}  // namespace
}  // namespace mlseg
