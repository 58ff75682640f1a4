#include "mlseg/metrics/tensor_metrics.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "mlseg/metrics/distance_transform.h"

namespace mlseg {
namespace {

// [Z, Y, X] or [1, Z, Y, X] nonzero -> contiguous uint8 of `voxels` entries (undefined stays undefined).
torch::Tensor ignore_flags(const torch::Tensor& ignore_mask, std::int64_t voxels, const char* what) {
  if (!ignore_mask.defined()) return {};
  if (ignore_mask.numel() != voxels || (ignore_mask.dim() == 4 && ignore_mask.size(0) != 1)) {
    throw std::invalid_argument(std::string(what) + ": ignore mask shape differs from the volumes");
  }
  return ignore_mask.ne(0).to(torch::kUInt8).contiguous().cpu().reshape({voxels});
}

const std::uint8_t* flags_or_null(const torch::Tensor& flags) {
  return flags.defined() ? flags.data_ptr<std::uint8_t>() : nullptr;
}

torch::Tensor binary_flags(const torch::Tensor& mask) { return mask.ne(0).to(torch::kUInt8).contiguous().cpu(); }

}  // namespace

std::vector<ConfusionCounts> count_confusion(const CodeVolume& pred, const CodeVolume& ref,
                                             const torch::Tensor& ignore_mask) {
  const CodeView ref_view = ref.view();
  const torch::Tensor extra = ignore_flags(ignore_mask, ref_view.voxels(), "count_confusion");
  return count_confusion(pred.view(), ref_view, flags_or_null(extra));
}

std::vector<ConfusionCounts> count_confusion_masks(const torch::Tensor& pred, const torch::Tensor& ref,
                                                   const torch::Tensor& ignore_mask) {
  if (!pred.defined() || !ref.defined() || pred.dim() != 4 || pred.sizes() != ref.sizes()) {
    throw std::invalid_argument("count_confusion_masks: expected two [C, Z, Y, X] masks of one shape");
  }
  const std::int64_t voxels = ref.size(1) * ref.size(2) * ref.size(3);
  const torch::Tensor p = binary_flags(pred), r = binary_flags(ref);
  const torch::Tensor extra = ignore_flags(ignore_mask, voxels, "count_confusion_masks");
  return count_confusion_flags(p.data_ptr<std::uint8_t>(), r.data_ptr<std::uint8_t>(), ref.size(0), voxels,
                               flags_or_null(extra));
}

SurfaceMetrics surface_metrics_masks(const torch::Tensor& pred, const torch::Tensor& ref,
                                     const std::array<double, 3>& spacing_zyx_mm, const SurfaceMetricOptions& options) {
  if (!pred.defined() || !ref.defined() || pred.dim() != 3 || pred.sizes() != ref.sizes()) {
    throw std::invalid_argument("surface_metrics_masks: expected two [Z, Y, X] masks of one shape");
  }
  const torch::Tensor p = binary_flags(pred), r = binary_flags(ref);
  return surface_metrics_flags(p.data_ptr<std::uint8_t>(), r.data_ptr<std::uint8_t>(),
                               {pred.size(0), pred.size(1), pred.size(2)}, spacing_zyx_mm, options);
}

torch::Tensor distance_transform_mm(const torch::Tensor& features, const std::array<double, 3>& spacing_zyx_mm,
                                    int threads) {
  if (!features.defined() || features.dim() != 3) {
    throw std::invalid_argument("distance_transform_mm: expected a [Z, Y, X] tensor");
  }
  const torch::Tensor flags = binary_flags(features);
  const std::array<std::int64_t, 3> shape{features.size(0), features.size(1), features.size(2)};
  std::vector<double> squared = squared_distance_transform(flags.data_ptr<std::uint8_t>(), shape, spacing_zyx_mm, threads);
  torch::Tensor result = torch::empty({shape[0], shape[1], shape[2]}, torch::kFloat64);
  double* out = result.data_ptr<double>();
  for (std::size_t i = 0; i < squared.size(); ++i) out[i] = std::sqrt(squared[i]);
  return result;
}

std::vector<ChannelCaseMetrics> case_metrics(const CodeVolume& pred, const CodeVolume& ref,
                                             const std::array<double, 3>& spacing_zyx_mm, const std::vector<int>& channels,
                                             const CaseMetricOptions& options, const torch::Tensor& ignore_mask) {
  const CodeView ref_view = ref.view();
  const torch::Tensor extra = ignore_flags(ignore_mask, ref_view.voxels(), "case_metrics");
  return case_metrics(pred.view(), ref_view, spacing_zyx_mm, channels, options, flags_or_null(extra));
}

}  // namespace mlseg
