// Surface metrics: hand-computed HD/HD95/ASSD/NSD, analytic boxes with anisotropic spacing,
// brute force on random blobs, boundary connectivity, and every empty cell.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "mlseg/labels/label_code.h"
#include "mlseg/metrics/surface_metrics.h"
#include "mlseg/metrics/tensor_metrics.h"

namespace mlseg {
namespace {

torch::Tensor box_mask(std::array<std::int64_t, 3> shape, std::array<std::int64_t, 3> lo, std::array<std::int64_t, 3> hi) {
  torch::Tensor mask = torch::zeros({shape[0], shape[1], shape[2]}, torch::kUInt8);
  mask.slice(0, lo[0], hi[0] + 1).slice(1, lo[1], hi[1] + 1).slice(2, lo[2], hi[2] + 1).fill_(1);
  return mask;
}

TEST(MetricsSurface, SingleVoxelsHandComputed) {
  // Voxels 3 slices and 4 rows apart at 2 x 1 x 1 mm: sqrt(6² + 4²) = sqrt(52) = 7.211 mm.
  torch::Tensor ref = torch::zeros({5, 6, 3}, torch::kUInt8), pred = torch::zeros({5, 6, 3}, torch::kUInt8);
  ref[0][0][1] = 1;
  pred[3][4][1] = 1;
  SurfaceMetricOptions options;
  options.nsd_tolerance_mm = 7.2;
  const SurfaceMetrics m = surface_metrics_masks(pred, ref, {2.0, 1.0, 1.0}, options);
  EXPECT_DOUBLE_EQ(m.hd.value(), std::sqrt(52.0));
  EXPECT_DOUBLE_EQ(m.hd95.value(), std::sqrt(52.0));
  EXPECT_DOUBLE_EQ(m.assd.value(), std::sqrt(52.0));
  EXPECT_EQ(m.nsd.value(), 0.0);
  options.nsd_tolerance_mm = 7.25;
  EXPECT_EQ(surface_metrics_masks(pred, ref, {2.0, 1.0, 1.0}, options).nsd.value(), 1.0);
}

TEST(MetricsSurface, PercentileAndAverageHandComputed) {
  // ref: one voxel at x = 0; pred: voxels at x = 2 and x = 6 (spacing x 0.5 mm): d = 1 and 3 mm.
  torch::Tensor ref = torch::zeros({1, 1, 8}, torch::kUInt8), pred = torch::zeros({1, 1, 8}, torch::kUInt8);
  ref[0][0][0] = 1;
  pred[0][0][2] = 1;
  pred[0][0][6] = 1;
  SurfaceMetricOptions options;
  options.nsd_tolerance_mm = 1.0;
  const SurfaceMetrics m = surface_metrics_masks(pred, ref, {4.0, 3.0, 0.5}, options);
  EXPECT_DOUBLE_EQ(m.hd.value(), 3.0);
  // pred→ref {1, 3}: 95th percentile 1 + 0.95 * 2 = 2.9; ref→pred {1}: 1.
  EXPECT_DOUBLE_EQ(m.hd95.value(), 2.9);
  EXPECT_DOUBLE_EQ(m.assd.value(), (1.0 + 3.0 + 1.0) / 3.0);
  EXPECT_DOUBLE_EQ(m.nsd.value(), 2.0 / 3.0);  // d ≤ τ counts (MONAI): 1 and 1 of 3
  EXPECT_DOUBLE_EQ(percentile_linear({4, 1, 3, 2}, 50), 2.5);
}

TEST(MetricsSurface, ShiftedBoxesAnisotropic) {
  // A 6 x 8 x 8 box and the same box shifted 2 voxels along x, spacing 3 x 2 x 0.5 mm. Every
  // boundary voxel is at most 2 x-steps (1 mm) from the other boundary: the far x faces are exactly
  // 1 mm apart, and the y/z faces are further apart than 1 mm in every other direction.
  const std::array<std::int64_t, 3> shape{10, 12, 16};
  const torch::Tensor ref = box_mask(shape, {2, 2, 2}, {7, 9, 9});
  const torch::Tensor pred = box_mask(shape, {2, 2, 4}, {7, 9, 11});
  SurfaceMetricOptions options;
  options.nsd_tolerance_mm = 0.99;
  const SurfaceMetrics m = surface_metrics_masks(pred, ref, {3.0, 2.0, 0.5}, options);
  EXPECT_DOUBLE_EQ(m.hd.value(), 1.0);
  EXPECT_DOUBLE_EQ(m.hd95.value(), 1.0);
  // Symmetric: swapping gives the same numbers.
  const SurfaceMetrics swapped = surface_metrics_masks(ref, pred, {3.0, 2.0, 0.5}, options);
  EXPECT_EQ(swapped.hd.value(), m.hd.value());
  EXPECT_DOUBLE_EQ(swapped.assd.value(), m.assd.value());
  EXPECT_DOUBLE_EQ(swapped.nsd.value(), m.nsd.value());
  // The 48 voxels of each far x face and the 24 inner voxels of each near x face are exactly 1 mm
  // away, so a tolerance just below 1 mm misses them: (2 * 240 - 2 * 72) / (2 * 240).
  EXPECT_DOUBLE_EQ(m.nsd.value(), (480.0 - 144.0) / 480.0);
  options.nsd_tolerance_mm = 1.0;
  EXPECT_EQ(surface_metrics_masks(pred, ref, {3.0, 2.0, 0.5}, options).nsd.value(), 1.0);
}

TEST(MetricsSurface, BoundaryConnectivity) {
  // 5³ cube without one corner: 6-connected boundary 124 - 27 = 97 voxels; with 26-connectivity
  // the voxel diagonal to the missing corner is boundary too (98).
  torch::Tensor cube = torch::ones({5, 5, 5}, torch::kUInt8);
  cube[0][0][0] = 0;
  const auto* data = cube.data_ptr<std::uint8_t>();
  const auto count = [](const std::vector<std::uint8_t>& b) { return std::count(b.begin(), b.end(), 1); };
  EXPECT_EQ(count(mask_boundary(data, {5, 5, 5}, 6)), 97);
  EXPECT_EQ(count(mask_boundary(data, {5, 5, 5}, 26)), 98);
  EXPECT_THROW(mask_boundary(data, {5, 5, 5}, 18), std::invalid_argument);
}

// Brute-force reference: boundary voxel sets, all pairwise distances.
SurfaceMetrics brute_force(const torch::Tensor& pred, const torch::Tensor& ref, std::array<double, 3> spacing, double tau,
                           int connectivity) {
  const std::array<std::int64_t, 3> shape{pred.size(0), pred.size(1), pred.size(2)};
  const torch::Tensor p = pred.contiguous(), r = ref.contiguous();
  const auto bp = mask_boundary(p.data_ptr<std::uint8_t>(), shape, connectivity);
  const auto br = mask_boundary(r.data_ptr<std::uint8_t>(), shape, connectivity);
  const auto directed = [&](const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
    std::vector<double> out;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!a[i]) continue;
      double best = 1e300;
      for (std::size_t j = 0; j < b.size(); ++j) {
        if (!b[j]) continue;
        const double dz = (static_cast<double>(i / (shape[1] * shape[2])) - static_cast<double>(j / (shape[1] * shape[2]))) * spacing[0];
        const double dy = (static_cast<double>((i / shape[2]) % shape[1]) - static_cast<double>((j / shape[2]) % shape[1])) * spacing[1];
        const double dx = (static_cast<double>(i % shape[2]) - static_cast<double>(j % shape[2])) * spacing[2];
        best = std::min(best, std::sqrt(dz * dz + dy * dy + dx * dx));
      }
      out.push_back(best);
    }
    return out;
  };
  SurfaceDistances d{directed(bp, br), directed(br, bp)};
  SurfaceMetricOptions options;
  return surface_metrics_from_distances(d, tau, options);
}

TEST(MetricsSurface, RandomBlobsMatchBruteForce) {
  torch::manual_seed(5);
  for (int connectivity : {6, 26}) {
    const torch::Tensor noise = torch::rand({9, 10, 12});
    const torch::Tensor ref = (torch::avg_pool3d(noise.unsqueeze(0), 3, 1, 1).squeeze(0) > 0.5).to(torch::kUInt8);
    const torch::Tensor pred = (torch::avg_pool3d(torch::rand({9, 10, 12}).unsqueeze(0), 3, 1, 1).squeeze(0) > 0.5).to(torch::kUInt8);
    ASSERT_GT(ref.sum().item<int>(), 0);
    ASSERT_GT(pred.sum().item<int>(), 0);
    const std::array<double, 3> spacing{2.2, 0.8, 1.1};
    SurfaceMetricOptions options;
    options.connectivity = connectivity;
    options.nsd_tolerance_mm = 1.5;
    options.threads = 2;
    const SurfaceMetrics fast = surface_metrics_masks(pred, ref, spacing, options);
    const SurfaceMetrics slow = brute_force(pred, ref, spacing, 1.5, connectivity);
    EXPECT_NEAR(fast.hd.value(), slow.hd.value(), 1e-9);
    EXPECT_NEAR(fast.hd95.value(), slow.hd95.value(), 1e-9);
    EXPECT_NEAR(fast.assd.value(), slow.assd.value(), 1e-9);
    EXPECT_NEAR(fast.nsd.value(), slow.nsd.value(), 1e-12);
  }
}

TEST(MetricsSurface, EmptyCells) {
  const torch::Tensor empty = torch::zeros({4, 4, 4}, torch::kUInt8);
  const torch::Tensor blob = box_mask({4, 4, 4}, {1, 1, 1}, {2, 2, 2});
  const SurfaceMetrics both = surface_metrics_masks(empty, empty, {1, 1, 1});
  for (const MetricValue* v : {&both.hd, &both.hd95, &both.assd, &both.nsd}) {
    EXPECT_EQ(v->format(), "n/a (both_empty)");
  }
  const SurfaceMetrics ref_empty = surface_metrics_masks(blob, empty, {1, 1, 1});
  EXPECT_EQ(ref_empty.hd.format(), "n/a (ref_empty)");
  EXPECT_EQ(ref_empty.hd95.format(), "n/a (ref_empty)");
  EXPECT_EQ(ref_empty.assd.format(), "n/a (ref_empty)");
  EXPECT_EQ(ref_empty.nsd.value(), 0.0);
  const SurfaceMetrics pred_empty = surface_metrics_masks(empty, blob, {1, 1, 1});
  EXPECT_EQ(pred_empty.hd.format(), "n/a (pred_empty)");
  EXPECT_EQ(pred_empty.assd.format(), "n/a (pred_empty)");
  EXPECT_EQ(pred_empty.nsd.value(), 0.0);
  SurfaceMetricOptions penalty;
  penalty.hd_empty_penalty_mm = 42.0;
  EXPECT_EQ(surface_metrics_masks(empty, blob, {1, 1, 1}, penalty).hd95.value(), 42.0);
  EXPECT_EQ(surface_metrics_masks(empty, empty, {1, 1, 1}, penalty).hd95.format(), "n/a (both_empty)");
}

TEST(MetricsSurface, CodesMatchMasksAndRespectIgnore) {
  torch::manual_seed(9);
  const std::array<std::int64_t, 3> shape{6, 7, 8};
  CodeVolume ref = empty_code_volume(shape, 2), pred = empty_code_volume(shape, 2);
  std::vector<torch::Tensor> ref_masks, pred_masks;
  for (int c = 0; c < 2; ++c) {
    ref_masks.push_back((torch::rand({6, 7, 8}) < 0.3).to(torch::kUInt8));
    pred_masks.push_back((torch::rand({6, 7, 8}) < 0.3).to(torch::kUInt8));
    add_channel_mask(ref, c, ref_masks[c].unsqueeze(0));
    add_channel_mask(pred, c, pred_masks[c].unsqueeze(0));
  }
  SurfaceMetricOptions options;
  options.nsd_tolerance_mm_per_channel = {0.5, 2.0};
  const auto from_codes = surface_metrics_codes(pred, ref, {1.5, 1.0, 0.7}, {0, 1}, options);
  for (int c = 0; c < 2; ++c) {
    SurfaceMetricOptions single;
    single.nsd_tolerance_mm = options.tolerance_for(c);
    const SurfaceMetrics expected = surface_metrics_masks(pred_masks[c], ref_masks[c], {1.5, 1.0, 0.7}, single);
    EXPECT_EQ(from_codes[c].hd, expected.hd);
    EXPECT_EQ(from_codes[c].hd95, expected.hd95);
    EXPECT_DOUBLE_EQ(from_codes[c].assd.value(), expected.assd.value());
    EXPECT_EQ(from_codes[c].nsd, expected.nsd);
  }
  // Ignore everything: both masks become empty.
  CodeVolume ignored = empty_code_volume(shape, 2);
  add_channel_mask(ignored, 2, torch::ones({1, 6, 7, 8}));
  const auto none = surface_metrics_codes(pred, ignored, {1, 1, 1}, {1});
  EXPECT_EQ(none[0].hd.format(), "n/a (both_empty)");
}

}  // namespace
}  // namespace mlseg
