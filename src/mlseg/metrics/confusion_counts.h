#pragma once
// Confusion counts: TP, FP, FN, TN per channel as int64. Summable over patches, cases and
// processes, so training validation and `evaluate` count the same way (Dice = 2TP/(2TP+FP+FN)).
#include <cstdint>
#include <vector>

#include "mlseg/labels/code_array.h"

namespace mlseg {

struct ConfusionCounts {
  std::int64_t tp = 0;
  std::int64_t fp = 0;
  std::int64_t fn = 0;
  std::int64_t tn = 0;

  std::int64_t ref_voxels() const { return tp + fn; }   ///< nnU-Net's n_ref
  std::int64_t pred_voxels() const { return tp + fp; }  ///< nnU-Net's n_pred
  ConfusionCounts& operator+=(const ConfusionCounts& other);
  bool operator==(const ConfusionCounts& other) const;
};

/// Adds `part` to `total` channel by channel (total is resized when empty).
void add_counts(std::vector<ConfusionCounts>& total, const std::vector<ConfusionCounts>& part);

/// Per channel counts from two code volumes of the same shape and channel count. Voxels whose
/// reference carries the ignore flag (nnU-Net: seg_ref == ignore_label) are excluded from all four
/// counts, as are voxels where `ignore_flags` (one byte per voxel, nonzero = ignore; may be null)
/// is set. A prediction's own ignore flag means nothing and is not read.
/// (Tensor forms: metrics/tensor_metrics.h.)
std::vector<ConfusionCounts> count_confusion(const CodeView& pred, const CodeView& ref,
                                             const std::uint8_t* ignore_flags = nullptr);

/// The same from per-channel 0/1 flags [channels, voxels] (one byte each, values 0 or 1);
/// `ignore_flags` as above.
std::vector<ConfusionCounts> count_confusion_flags(const std::uint8_t* pred, const std::uint8_t* ref,
                                                   std::int64_t channels, std::int64_t voxels,
                                                   const std::uint8_t* ignore_flags = nullptr);

}  // namespace mlseg
