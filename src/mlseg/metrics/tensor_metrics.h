#pragma once
// Tensor forms of the metrics engine, for the training pipeline and tests: each converts to flags
// or code views and calls the torch-free function of the same name (confusion_counts.h,
// surface_metrics.h, distance_transform.h, case_metrics.h).
#include <torch/types.h>

#include <array>
#include <vector>

#include "mlseg/labels/label_code.h"
#include "mlseg/metrics/case_metrics.h"
#include "mlseg/metrics/confusion_counts.h"
#include "mlseg/metrics/surface_metrics.h"

namespace mlseg {

/// count_confusion with an extra ignore mask ([Z, Y, X] or [1, Z, Y, X], nonzero = ignore;
/// an undefined tensor ignores nothing).
std::vector<ConfusionCounts> count_confusion(const CodeVolume& pred, const CodeVolume& ref,
                                             const torch::Tensor& ignore_mask);

/// Counts from raw masks: `pred` and `ref` are [C, Z, Y, X] (any dtype, nonzero = inside);
/// `ignore_mask` as above.
std::vector<ConfusionCounts> count_confusion_masks(const torch::Tensor& pred, const torch::Tensor& ref,
                                                   const torch::Tensor& ignore_mask = {});

/// Surface metrics of two [Z, Y, X] masks (any dtype, nonzero = inside).
SurfaceMetrics surface_metrics_masks(const torch::Tensor& pred, const torch::Tensor& ref,
                                     const std::array<double, 3>& spacing_zyx_mm,
                                     const SurfaceMetricOptions& options = {});

/// `features` [Z, Y, X] (any dtype, nonzero = feature) -> float64 [Z, Y, X] distances in mm.
torch::Tensor distance_transform_mm(const torch::Tensor& features, const std::array<double, 3>& spacing_zyx_mm,
                                    int threads = 0);

/// case_metrics with an extra ignore mask as above.
std::vector<ChannelCaseMetrics> case_metrics(const CodeVolume& pred, const CodeVolume& ref,
                                             const std::array<double, 3>& spacing_zyx_mm, const std::vector<int>& channels,
                                             const CaseMetricOptions& options, const torch::Tensor& ignore_mask);

}  // namespace mlseg
