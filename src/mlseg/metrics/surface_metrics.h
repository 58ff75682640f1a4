#pragma once
// Surface metrics with real spacing, as MONAI defines them (monai/metrics/hausdorff_distance.py,
// surface_distance.py, surface_dice.py; use_subvoxels=False):
//
//  - boundary voxels: voxels of the mask with at least one background neighbour; the neighbourhood
//    is 6-connected by default (scipy's binary_erosion default, which MONAI uses) or 26-connected;
//    voxels outside the image count as background, so a mask touching the border has a boundary there;
//  - d(a → B): distance in mm from the centre of boundary voxel a to the nearest boundary voxel
//    centre of B (exact Euclidean distance transform of B's boundary);
//  - HD = max over both directions of the largest d; HD95 = max of the two directed 95th
//    percentiles (linear interpolation, numpy.percentile's default);
//  - ASSD = mean of all d in both directions together (MONAI's symmetric average);
//  - NSD = (#{d(pred→ref) ≤ τ} + #{d(ref→pred) ≤ τ}) / (|∂pred| + |∂ref|) at tolerance τ mm.
// Empty masks (ARCHITECTURE.md table): both empty → all n/a (both_empty); one empty → HD, HD95,
// ASSD n/a (ref_empty / pred_empty), or hd_empty_penalty_mm when set; NSD 0.
// The work is confined to the bounding box of both masks: every boundary voxel lies inside it, so
// the distances are the same as over the whole image. Within the box the distances are searched
// from each boundary voxel rather than read from two whole-box transforms (boundary_distances.h);
// the values are the transform's.
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "mlseg/labels/code_array.h"
#include "mlseg/metrics/metric_value.h"

namespace mlseg {

inline constexpr int kDefaultSurfaceConnectivity = 6;
inline constexpr double kDefaultNsdToleranceMm = 1.0;
inline constexpr double kDefaultHdPercentile = 95.0;

struct SurfaceMetricOptions {
  /// Neighbourhood that defines boundary voxels: 6 (faces; MONAI/scipy default) or 26 (faces,
  /// edges and corners; thinner boundaries).
  int connectivity = kDefaultSurfaceConnectivity;
  /// NSD tolerance τ in mm, for every channel without an entry in nsd_tolerance_mm_per_channel.
  double nsd_tolerance_mm = kDefaultNsdToleranceMm;
  /// Per channel τ (index = channel); empty or shorter = nsd_tolerance_mm for the rest.
  std::vector<double> nsd_tolerance_mm_per_channel;
  /// The percentile of HD95 (MONAI's `percentile`).
  double hd_percentile = kDefaultHdPercentile;
  /// When set, HD, HD95 and ASSD of a pair where exactly one mask is empty take this value (e.g.
  /// the image diagonal in mm) instead of n/a (ref_empty / pred_empty).
  std::optional<double> hd_empty_penalty_mm;
  /// Threads of the distance search (<= 0: all cores). Set 1 when cases already run in parallel.
  int threads = 0;

  double tolerance_for(int channel) const;
};

struct SurfaceMetrics {
  MetricValue hd;
  MetricValue hd95;
  MetricValue assd;
  MetricValue nsd;
};

/// Directed boundary distances, one entry per boundary voxel (mm).
struct SurfaceDistances {
  std::vector<double> pred_to_ref_mm;
  std::vector<double> ref_to_pred_mm;
};

/// Boundary voxels (1) of a binary [Z, Y, X] mask (nonzero = inside), row-major, X fastest.
std::vector<std::uint8_t> mask_boundary(const std::uint8_t* mask, const std::array<std::int64_t, 3>& shape_zyx,
                                        int connectivity = kDefaultSurfaceConnectivity);

/// Distances between the boundaries of two [Z, Y, X] masks (both non-empty for non-empty results).
SurfaceDistances surface_distances(const std::uint8_t* pred, const std::uint8_t* ref,
                                   const std::array<std::int64_t, 3>& shape_zyx,
                                   const std::array<double, 3>& spacing_zyx_mm,
                                   const SurfaceMetricOptions& options = {});

/// HD, HD95, ASSD, NSD from directed distances; empty vectors mean empty masks.
SurfaceMetrics surface_metrics_from_distances(const SurfaceDistances& distances, double nsd_tolerance_mm,
                                              const SurfaceMetricOptions& options = {});

/// The `q`-th percentile with linear interpolation (numpy.percentile's default). `values` non-empty.
double percentile_linear(std::vector<double> values, double q);

/// Surface metrics of two [Z, Y, X] masks (one byte per voxel, nonzero = inside), cropped to
/// their bounding box first; NSD uses options.nsd_tolerance_mm. (Tensor form:
/// metrics/tensor_metrics.h.)
SurfaceMetrics surface_metrics_flags(const std::uint8_t* pred, const std::uint8_t* ref,
                                     const std::array<std::int64_t, 3>& shape_zyx,
                                     const std::array<double, 3>& spacing_zyx_mm,
                                     const SurfaceMetricOptions& options = {});

/// Surface metrics of the listed channels of two code volumes (one bounding-box pass for all
/// channels, then per channel crop, boundaries and distances, in buffers reused across channels).
/// Voxels carrying the reference's ignore flag are background in both masks. Result[i] is for
/// channels[i].
std::vector<SurfaceMetrics> surface_metrics_codes(const CodeView& pred, const CodeView& ref,
                                                  const std::array<double, 3>& spacing_zyx_mm,
                                                  const std::vector<int>& channels,
                                                  const SurfaceMetricOptions& options = {});

}  // namespace mlseg
