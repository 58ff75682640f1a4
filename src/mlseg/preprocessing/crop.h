#pragma once
// Cropping to the nonzero region (nnU-Net crop_to_nonzero, preprocessing/cropping/cropping.py):
// the bounding box of the voxels where any image channel is nonzero, and the hole-filled nonzero
// mask that zscore normalisation uses when the plan says use_mask_for_norm.
#include <torch/types.h>

#include <array>
#include <cstdint>

namespace mlseg {

/// [begin, end) per axis, zyx.
struct CropBox {
  std::array<std::int64_t, 3> begin{};
  std::array<std::int64_t, 3> end{};
  std::array<std::int64_t, 3> shape() const { return {end[0] - begin[0], end[1] - begin[1], end[2] - begin[2]}; }
};

/// Bounding box of the voxels where any channel of `image` ([C, Z, Y, X] float32) is nonzero;
/// the whole grid when no voxel is nonzero (nothing to crop to; nnU-Net keeps the image too).
CropBox nonzero_bounding_box(const torch::Tensor& image);

/// [Z, Y, X] bool: any channel nonzero, with enclosed holes filled (scipy binary_fill_holes:
/// background regions not connected to the grid border, 6-connectivity, become foreground).
torch::Tensor filled_nonzero_mask(const torch::Tensor& image);

/// The box's part of a [C, Z, Y, X] tensor (a contiguous copy).
torch::Tensor crop_to_box(const torch::Tensor& volume, const CropBox& box);

/// The inverse of crop_to_box: a [C, full shape] tensor filled with `fill` and `cropped` put back
/// at the box (prediction export puts cropped results back into the original grid this way).
torch::Tensor uncrop_from_box(const torch::Tensor& cropped, const CropBox& box,
                              const std::array<std::int64_t, 3>& full_shape_zyx, double fill = 0.0);

}  // namespace mlseg
