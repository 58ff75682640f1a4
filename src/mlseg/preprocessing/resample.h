#pragma once
// Resampling images and label codes to a new voxel grid: nnU-Net v2's
// resample_data_or_seg_to_shape (preprocessing/resampling/default_resampling.py), computed axis by
// axis so that it is fast.
//
// Coordinate mapping (skimage.transform.resize, scipy.ndimage.zoom(grid_mode=True)): output index
// o along an axis of in_size -> out_size reads input coordinate (o + 0.5) * in_size / out_size - 0.5;
// beyond the first and last voxel the volume continues with its edge value (mode 'edge' /
// 'nearest'). An axis whose size does not change is left exactly as it is; an axis of size 1
// (2D images are [C, 1, Y, X]) only ever repeats its one slice.
#include <torch/types.h>

#include <array>
#include <cstdint>

#include "mlseg/labels/label_code.h"
#include "mlseg/labels/label_encoding.h"  // LabelResampling

namespace mlseg {

/// nnU-Net's ANISO_THRESHOLD (configuration.py): spacing ratio above which one axis is resampled apart.
inline constexpr double kDefaultAnisotropyThreshold = 3.0;

/// Shape after resampling from `old_spacing_zyx` to `new_spacing_zyx` (nnU-Net compute_new_shape):
/// round(old_spacing / new_spacing * old_shape) per axis, at least 1; axes of size 1 stay 1.
std::array<std::int64_t, 3> resampled_shape(const std::array<std::int64_t, 3>& old_shape_zyx,
                                            const std::array<double, 3>& old_spacing_zyx,
                                            const std::array<double, 3>& new_spacing_zyx);

/// The axis (0 = z, 1 = y, 2 = x) that nnU-Net resamples apart from the others, with nearest
/// neighbour, or -1 (get_do_separate_z / get_lowres_axis): when the old spacing's max / min exceeds
/// `anisotropy_threshold`, the axis of the largest old spacing; else the same test on the new
/// spacing; -1 when neither is anisotropic or when the largest spacing is shared by two axes.
int separate_axis_for(const std::array<double, 3>& old_spacing_zyx, const std::array<double, 3>& new_spacing_zyx,
                      double anisotropy_threshold = kDefaultAnisotropyThreshold);

/// How image intensities are interpolated (nnU-Net: spline order 3 for images).
enum class ImageInterpolation {
  linear,  ///< order 1
  cubic,   ///< order 3: cubic B-spline with prefilter, as scipy.ndimage's spline_filter + order 3
};

struct ResampleOptions {
  /// nnU-Net resamples images with order 3 (resample_data_or_seg_to_shape, order=3).
  ImageInterpolation image_interpolation = ImageInterpolation::cubic;
  /// Worker threads; 0 = all cores. The output does not depend on it.
  int threads = 0;
};

/// `data` ([C, Z, Y, X], any floating or integer dtype, converted to float32 on the CPU) resampled
/// to [C, new_shape_zyx], float32. The three axes are resampled one after the other (x, y, z), each
/// with `options.image_interpolation`, except `separate_axis` (>= 0; see separate_axis_for), which
/// takes the nearest input slice (nnU-Net order_z = 0: round the mapped coordinate, ties upwards).
/// No anti-aliasing when shrinking (nnU-Net passes anti_aliasing=False). Same shape: a copy.
///
/// Cubic overshoot is clipped to the input's range, as skimage.transform.resize (clip=True, which
/// nnU-Net leaves on) does: per channel to the whole volume's [min, max]; with a separate axis, to
/// the [min, max] of the input slice (along that axis) each output slice comes from, since nnU-Net
/// resizes slice by slice there. Without it, bright spots ring by up to ~0.25 of the normalised
/// intensity (measured against DefaultPreprocessor.run_case, tests/parity).
///
/// Cubic border handling: each line is prefiltered as if it continued forever with its edge
/// values. scipy pads 12 edge values and mirrors beyond them; the two differ by about 2e-14 of the
/// image's values near the outermost voxels, far below float32 rounding. Computation is float32
/// where nnU-Net uses float64, so values differ from nnU-Net's by float32 rounding (~1e-6 relative).
torch::Tensor resample_image(const torch::Tensor& data, const std::array<std::int64_t, 3>& new_shape_zyx,
                             int separate_axis, const ResampleOptions& options = {});

/// `code` resampled to `new_shape_zyx`: linear weights along every axis except `separate_axis`
/// (>= 0), which takes the nearest input slice as in resample_image. Any code dtype and word count
/// (multi-word codes above 63 channels). `threads`: 0 = all cores; the output does not depend on it.
CodeVolume resample_codes(const CodeVolume& code, const std::array<std::int64_t, 3>& new_shape_zyx,
                          int separate_axis, LabelResampling mode, int threads = 0);

}  // namespace mlseg
