// Surface metrics: hand-computed HD/HD95/ASSD/NSD, analytic boxes with anisotropic spacing,
// brute force on random blobs, boundary connectivity, and every empty cell.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "mlseg/labels/label_code.h"
#include "mlseg/metrics/distance_transform.h"
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

// The implementation before the boundary search (#23 part 4): two whole-box exact transforms, read
// at the other mask's boundary voxels. The search must give the same distances.
SurfaceDistances whole_box_transform_distances(const std::vector<std::uint8_t>& pred, const std::vector<std::uint8_t>& ref,
                                               const std::array<std::int64_t, 3>& shape,
                                               const std::array<double, 3>& spacing, int connectivity) {
  const std::vector<std::uint8_t> pred_boundary = mask_boundary(pred.data(), shape, connectivity);
  const std::vector<std::uint8_t> ref_boundary = mask_boundary(ref.data(), shape, connectivity);
  const bool pred_any = std::find(pred_boundary.begin(), pred_boundary.end(), 1) != pred_boundary.end();
  const bool ref_any = std::find(ref_boundary.begin(), ref_boundary.end(), 1) != ref_boundary.end();
  const auto directed = [&](const std::vector<std::uint8_t>& from, const std::vector<std::uint8_t>& to, bool to_any) {
    std::vector<double> out, squared;
    if (to_any) squared = squared_distance_transform(to.data(), shape, spacing, 1);
    for (std::size_t i = 0; i < from.size(); ++i) {
      if (from[i]) out.push_back(to_any ? std::sqrt(squared[i]) : std::numeric_limits<double>::infinity());
    }
    return out;
  };
  SurfaceDistances result;
  if (pred_any) result.pred_to_ref_mm = directed(pred_boundary, ref_boundary, ref_any);
  if (ref_any) result.ref_to_pred_mm = directed(ref_boundary, pred_boundary, pred_any);
  return result;
}

struct MaskPair {
  std::string name;
  std::array<std::int64_t, 3> shape;
  std::vector<std::uint8_t> pred, ref;
};

std::vector<std::uint8_t> blob(const std::array<std::int64_t, 3>& shape, std::uint32_t seed, double fill) {
  // Smoothed noise (a 3 x 3 x 3 box filter of uniform noise) thresholded: irregular blobs of many sizes.
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const std::int64_t nz = shape[0], ny = shape[1], nx = shape[2];
  std::vector<double> noise(static_cast<std::size_t>(nz * ny * nx));
  for (double& v : noise) v = uniform(rng);
  std::vector<std::uint8_t> mask(noise.size());
  for (std::int64_t z = 0; z < nz; ++z) {
    for (std::int64_t y = 0; y < ny; ++y) {
      for (std::int64_t x = 0; x < nx; ++x) {
        double sum = 0.0;
        int n = 0;
        for (std::int64_t dz = -1; dz <= 1; ++dz) {
          for (std::int64_t dy = -1; dy <= 1; ++dy) {
            for (std::int64_t dx = -1; dx <= 1; ++dx) {
              const std::int64_t zz = z + dz, yy = y + dy, xx = x + dx;
              if (zz < 0 || zz >= nz || yy < 0 || yy >= ny || xx < 0 || xx >= nx) continue;
              sum += noise[static_cast<std::size_t>((zz * ny + yy) * nx + xx)];
              ++n;
            }
          }
        }
        mask[static_cast<std::size_t>((z * ny + y) * nx + x)] = sum / n > 1.0 - fill * 0.5 - 0.25 ? 1 : 0;
      }
    }
  }
  return mask;
}

std::vector<std::uint8_t> box_flags(const std::array<std::int64_t, 3>& shape, std::array<std::int64_t, 3> lo,
                                    std::array<std::int64_t, 3> hi) {
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(shape[0] * shape[1] * shape[2]), 0);
  for (std::int64_t z = lo[0]; z <= hi[0]; ++z) {
    for (std::int64_t y = lo[1]; y <= hi[1]; ++y) {
      for (std::int64_t x = lo[2]; x <= hi[2]; ++x) mask[static_cast<std::size_t>((z * shape[1] + y) * shape[2] + x)] = 1;
    }
  }
  return mask;
}

std::vector<std::uint8_t> ball(const std::array<std::int64_t, 3>& shape, std::array<double, 3> centre, double radius) {
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(shape[0] * shape[1] * shape[2]), 0);
  for (std::int64_t z = 0; z < shape[0]; ++z) {
    for (std::int64_t y = 0; y < shape[1]; ++y) {
      for (std::int64_t x = 0; x < shape[2]; ++x) {
        const double dz = z - centre[0], dy = y - centre[1], dx = x - centre[2];
        mask[static_cast<std::size_t>((z * shape[1] + y) * shape[2] + x)] = dz * dz + dy * dy + dx * dx <= radius * radius;
      }
    }
  }
  return mask;
}

std::vector<MaskPair> varied_mask_pairs() {
  std::vector<MaskPair> pairs;
  const std::array<std::int64_t, 3> s{14, 17, 19};
  const std::vector<std::uint8_t> empty(static_cast<std::size_t>(s[0] * s[1] * s[2]), 0);
  pairs.push_back({"random blobs", s, blob(s, 1, 0.5), blob(s, 2, 0.5)});
  pairs.push_back({"sparse random blobs", s, blob(s, 3, 0.2), blob(s, 4, 0.25)});
  pairs.push_back({"dense blobs touching every face", s, blob(s, 5, 0.9), blob(s, 6, 0.85)});
  pairs.push_back({"same blob", s, blob(s, 7, 0.5), blob(s, 7, 0.5)});
  pairs.push_back({"shifted boxes", s, box_flags(s, {2, 3, 4}, {9, 12, 13}), box_flags(s, {3, 3, 6}, {10, 11, 15})});
  pairs.push_back({"boxes filling the grid", s, box_flags(s, {0, 0, 0}, {13, 16, 18}), box_flags(s, {0, 1, 0}, {13, 16, 17})});
  pairs.push_back({"nested balls", s, ball(s, {7, 8, 9}, 6.3), ball(s, {6.5, 8.5, 9}, 3.2)});
  pairs.push_back({"far corners", s, box_flags(s, {0, 0, 0}, {1, 2, 1}), box_flags(s, {12, 14, 15}, {13, 16, 18})});
  pairs.push_back({"single voxels", s, box_flags(s, {3, 4, 5}, {3, 4, 5}), box_flags(s, {10, 1, 17}, {10, 1, 17})});
  pairs.push_back({"single voxel and blob", s, box_flags(s, {13, 16, 18}, {13, 16, 18}), blob(s, 8, 0.4)});
  pairs.push_back({"empty prediction", s, empty, blob(s, 9, 0.5)});
  pairs.push_back({"empty reference", s, blob(s, 10, 0.5), empty});
  pairs.push_back({"both empty", s, empty, empty});
  // Plates far apart: every search in a plane is long, so the planes switch to their transform.
  const std::array<std::int64_t, 3> tall{40, 24, 21};
  pairs.push_back({"far plates", tall, box_flags(tall, {0, 0, 0}, {1, 23, 20}), box_flags(tall, {37, 2, 3}, {39, 20, 17})});
  pairs.push_back({"blob against far plate", tall, blob(tall, 11, 0.4), box_flags(tall, {39, 0, 0}, {39, 23, 20})});
  const std::array<std::int64_t, 3> flat{1, 23, 29};
  pairs.push_back({"one slice", flat, blob(flat, 12, 0.5), blob(flat, 13, 0.5)});
  const std::array<std::int64_t, 3> line{1, 1, 37};
  pairs.push_back({"one row", line, blob(line, 14, 0.5), blob(line, 15, 0.5)});
  const std::array<std::int64_t, 3> column{31, 1, 1};
  pairs.push_back({"one column", column, blob(column, 16, 0.5), blob(column, 17, 0.5)});
  // Wider than 16-bit offsets reach (the 32-bit table).
  const std::array<std::int64_t, 3> wide{1, 2, 70000};
  pairs.push_back({"wide rows", wide, box_flags(wide, {0, 0, 3}, {0, 1, 9}), box_flags(wide, {0, 1, 69990}, {0, 1, 69999})});
  return pairs;
}

TEST(MetricsSurface, SearchMatchesWholeBoxTransform) {
  const std::vector<std::array<double, 3>> spacings{{1.0, 1.0, 1.0}, {2.2, 0.8, 1.1}, {0.7, 0.7, 3.0}, {5.0, 0.3, 0.45}};
  int compared = 0, identical = 0;
  for (const MaskPair& pair : varied_mask_pairs()) {
    for (const auto& spacing : spacings) {
      for (int connectivity : {6, 26}) {
        const SurfaceDistances expected =
            whole_box_transform_distances(pair.pred, pair.ref, pair.shape, spacing, connectivity);
        for (int threads : {1, 3}) {
          SurfaceMetricOptions options;
          options.connectivity = connectivity;
          options.threads = threads;
          const SurfaceDistances actual = surface_distances(pair.pred.data(), pair.ref.data(), pair.shape, spacing, options);
          const std::string where = pair.name + ", spacing " + std::to_string(spacing[0]) + " " + std::to_string(spacing[1]) +
                                    " " + std::to_string(spacing[2]) + ", connectivity " + std::to_string(connectivity) +
                                    ", threads " + std::to_string(threads);
          for (const auto& [a, e] : {std::pair{&actual.pred_to_ref_mm, &expected.pred_to_ref_mm},
                                     std::pair{&actual.ref_to_pred_mm, &expected.ref_to_pred_mm}}) {
            ASSERT_EQ(a->size(), e->size()) << where;
            for (std::size_t i = 0; i < a->size(); ++i) {
              const double want = (*e)[i], got = (*a)[i];
              ++compared;
              identical += got == want;
              if (std::isinf(want)) {
                ASSERT_EQ(got, want) << where << ", voxel " << i;
              } else {
                ASSERT_NEAR(got, want, 1e-12 * std::max(1.0, want)) << where << ", voxel " << i;
              }
            }
          }
          for (double tau : {0.5, 1.0, 2.2, 3.0}) {
            const SurfaceMetrics m = surface_metrics_from_distances(actual, tau, options);
            const SurfaceMetrics want = surface_metrics_from_distances(expected, tau, options);
            EXPECT_EQ(m.nsd, want.nsd) << where << ", tau " << tau;
            EXPECT_EQ(m.hd, want.hd) << where;
            if (m.hd95.defined()) {
              EXPECT_NEAR(m.hd95.value(), want.hd95.value(), 1e-12 * std::max(1.0, want.hd95.value())) << where;
              EXPECT_NEAR(m.assd.value(), want.assd.value(), 1e-12 * std::max(1.0, want.assd.value())) << where;
            } else {
              EXPECT_EQ(m.hd95.format(), want.hd95.format()) << where;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(compared, 100000);
#ifndef __FP_FAST_FMA
  // The search adds the same terms in the same order as the transform, so apart from near ties the
  // values are bit for bit the same (where the compiler fuses multiply-adds, the two round differently).
  EXPECT_GE(identical, compared - compared / 1000) << identical << " of " << compared << " identical";
#endif
}

TEST(MetricsSurface, CodesMatchWholeBoxTransformOnACropWithIgnoredVoxels) {
  const std::array<std::int64_t, 3> shape{12, 15, 13};
  const std::vector<std::uint8_t> pred = blob(shape, 21, 0.3), ref = blob(shape, 22, 0.3);
  std::vector<std::uint8_t> ignored(pred.size(), 0);
  for (std::size_t i = 0; i < ignored.size(); i += 7) ignored[i] = 1;
  CodeVolume pred_code = empty_code_volume(shape, 1), ref_code = empty_code_volume(shape, 1);
  const auto tensor = [&](const std::vector<std::uint8_t>& flags) {
    return torch::from_blob(const_cast<std::uint8_t*>(flags.data()), {1, shape[0], shape[1], shape[2]}, torch::kUInt8).clone();
  };
  add_channel_mask(pred_code, 0, tensor(pred));
  add_channel_mask(ref_code, 0, tensor(ref));
  add_channel_mask(ref_code, 1, tensor(ignored));  // the reference's ignore flag
  std::vector<std::uint8_t> pred_kept = pred, ref_kept = ref;
  for (std::size_t i = 0; i < ignored.size(); ++i) {
    if (ignored[i]) pred_kept[i] = ref_kept[i] = 0;
  }
  const std::array<double, 3> spacing{1.7, 0.9, 0.6};
  for (int connectivity : {6, 26}) {
    SurfaceMetricOptions options;
    options.connectivity = connectivity;
    options.nsd_tolerance_mm = 1.2;
    const SurfaceMetrics got = surface_metrics_codes(pred_code, ref_code, spacing, {0}, options)[0];
    const SurfaceMetrics want = surface_metrics_from_distances(
        whole_box_transform_distances(pred_kept, ref_kept, shape, spacing, connectivity), 1.2, options);
    EXPECT_NEAR(got.hd.value(), want.hd.value(), 1e-12);
    EXPECT_NEAR(got.hd95.value(), want.hd95.value(), 1e-12);
    EXPECT_NEAR(got.assd.value(), want.assd.value(), 1e-12);
    EXPECT_EQ(got.nsd, want.nsd);
  }
}

}  // namespace
}  // namespace mlseg
