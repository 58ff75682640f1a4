#pragma once
// Connected components of a binary mask (issue #24): labelling, the largest component, and the
// removal of small ones — the usual clean-ups of a predicted segmentation. In data/ (below
// postprocessing/) because the cascade augmentation also removes components (cascade_transforms.h).
//
// A scan over x-runs: each row (z, y) is cut into runs of foreground voxels, a run is joined
// (union-find) with the runs it touches in the rows already scanned — (z, y-1) and (z-1, y-1..y+1);
// with full connectivity two runs touch when their x-intervals overlap or are diagonal neighbours —
// and the roots are numbered in scan order. Work and memory grow with the number of runs, not of
// voxels, apart from reading the mask and writing the result. Z-slabs are scanned on all cores and
// joined at their borders afterwards.
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace mlseg {

/// Connected components of a binary mask [Z, Y, X] (bool or uint8, CPU) with full connectivity:
/// 26 neighbours in 3D; a one-slice volume [1, Y, X] (a 2D image) therefore gets 8-connectivity.
/// Any nonzero uint8 value is foreground.
struct ComponentLabels {
  torch::Tensor labels;               ///< int32 [Z, Y, X]: 0 background, components 1..n
  std::vector<std::int64_t> sizes;    ///< sizes[i] = voxels of component i + 1
};

/// Components numbered in the order of their first voxel in z-y-x scan order (z outer, x fastest),
/// so the result does not depend on threads. Throws mlseg::Error for a mask that is not 3-D, not
/// bool/uint8, not on the CPU, or too large for int32 labels.
ComponentLabels label_components(const torch::Tensor& mask);

/// The mask with only its largest component (ties: the one with the lowest label, i.e. first in
/// z-y-x scan order); an empty mask stays empty. Returns bool [Z, Y, X]; no label volume is made.
torch::Tensor keep_largest_component(const torch::Tensor& mask);

/// The mask without components of fewer than `min_voxels` voxels (0 or 1 keeps every component;
/// negative values throw mlseg::Error). Returns bool [Z, Y, X]; no label volume is made.
torch::Tensor remove_small_components(const torch::Tensor& mask, std::int64_t min_voxels);

namespace detail {

/// label_components with the volume cut into `num_slabs` z-slabs (clamped to [1, Z]) scanned on
/// up to `threads` threads (<= 0: all cores), so that tests can pin the joins between slabs on
/// small volumes. label_components chooses both from the volume's size.
ComponentLabels label_components_in_slabs(const torch::Tensor& mask, std::int64_t num_slabs, int threads);

}  // namespace detail

}  // namespace mlseg
