#pragma once
// Confusion counts: TP, FP, FN, TN per channel as int64. Summable over patches, cases and
// processes, so training validation and `evaluate` count the same way (Dice = 2TP/(2TP+FP+FN)).
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "mlseg/labels/label_code.h"

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
/// counts, as are voxels where `ignore_mask` ([Z, Y, X] or [1, Z, Y, X], nonzero = ignore) is set.
/// A prediction's own ignore flag means nothing and is not read.
std::vector<ConfusionCounts> count_confusion(const CodeVolume& pred, const CodeVolume& ref,
                                             const torch::Tensor& ignore_mask = {});

/// The same from raw masks: `pred` and `ref` are [C, Z, Y, X] (any dtype, nonzero = inside);
/// `ignore_mask` as above.
std::vector<ConfusionCounts> count_confusion_masks(const torch::Tensor& pred, const torch::Tensor& ref,
                                                   const torch::Tensor& ignore_mask = {});

}  // namespace mlseg
