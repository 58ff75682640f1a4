#pragma once
// The spatial part of the training augmentation: rotation and scaling about the centre of the
// sample, resampled in ONE pass that writes the centre patch (nnU-Net v2's SpatialTransform with
// its default arguments, see augmentation_options.h). Image and labels share the per-voxel
// trilinear weights; labels are interpolated per channel bit, so the cost does not depend on how
// many distinct label values (bit combinations) the sample holds.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

#include "mlseg/core/random.h"
#include "mlseg/data/augmentation_options.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

/// How a patch is augmented, decided by its shape (nnU-Net's
/// configure_rotation_dummyDA_mirroring_and_inital_patch_size).
enum class AugmentationMode {
  volume_3d,  ///< rotation about all three axes
  dummy_2d,   ///< anisotropic 3D patch: rotation and scaling in-plane, slice by slice
  planar_2d,  ///< 2D data, [C, 1, Y, X]
};

struct AugmentationGeometry {
  AugmentationMode mode = AugmentationMode::volume_3d;
  double max_rotation_rad = 0.0;  ///< angles are drawn from U(-max, max)
  std::vector<int> mirror_axes;   ///< spatial axes (0 = z, 1 = y, 2 = x) that may be flipped
};

/// Mode, rotation bound and mirror axes for a patch of `patch_size_zyx` (2D: patch_size_zyx[0] == 1).
AugmentationGeometry augmentation_geometry(const std::array<std::int64_t, 3>& patch_size_zyx,
                                           const SpatialTransformOptions& options = {});

/// The size the sampler should cut so that rotation and scaling pull in no padding: nnU-Net's
/// get_patch_size — the patch corner rotated by the maximum angle (capped at 90 degrees) about
/// each axis in turn, the per-axis maximum kept, divided by initial_patch_scale_bound, floored.
/// Dummy 2D and 2D: in-plane only, axis 0 keeps the patch size.
std::array<std::int64_t, 3> initial_patch_size(const std::array<std::int64_t, 3>& patch_size_zyx,
                                               const SpatialTransformOptions& options = {});

/// One draw of the spatial transform's random parameters.
struct SpatialParameters {
  bool rotated = false;
  /// Radians about axes z, y, x (3D); in-plane modes use angles_rad[0] only.
  std::array<double, 3> angles_rad{0.0, 0.0, 0.0};
  bool scaled = false;
  double scale = 1.0;  ///< same factor on every axis; < 1 zooms in
  bool is_identity() const { return !rotated && !scaled; }
};

/// Draws do-rotation, do-scaling (and do-elastic) in nnU-Net's order, then the angles and the scale.
SpatialParameters sample_spatial_parameters(const AugmentationGeometry& geometry, const SpatialTransformOptions& options,
                                            SplitMix64& rng);

struct SpatialOutput {
  torch::Tensor image;  ///< float32 [C, patch_z, patch_y, patch_x]
  CodeVolume codes;     ///< [W, patch_z, patch_y, patch_x]
};

/// Resamples `image` (float32 [C, Z, Y, X], contiguous CPU) and `codes` (same Z, Y, X) to the
/// centre patch under `parameters`. The patch centre is the input voxel floor(S/2) - floor(P/2)
/// + (P-1)/2 per axis, so an identity draw is exactly the integer centre crop nnU-Net's
/// crop_tensor makes (nnU-Net's interpolating path centres at (S-1)/2 instead, half a voxel away
/// when S - P is odd; we keep both paths on the same grid). Identity draws are a plain copy.
/// Outside the input the image is options.image_outside_value and labels are background.
/// The output is flipped along every axis with mirror_zyx set (the pipeline's mirroring, done in
/// the same pass: the crop copies rows in mirror order, the resampling walks the grid backwards).
SpatialOutput apply_spatial_transform(const torch::Tensor& image, const CodeVolume& codes,
                                      const std::array<std::int64_t, 3>& patch_size_zyx,
                                      const AugmentationGeometry& geometry, const SpatialParameters& parameters,
                                      const SpatialTransformOptions& options = {},
                                      const std::array<bool, 3>& mirror_zyx = {false, false, false});

}  // namespace mlseg
