#pragma once
// The per-sample training augmentation: nnU-Net v2's default 3D / 2D training transforms
// (spatial, intensity, mirroring) on one sample cut at initial_patch_size(patch_size). Single
// threaded and deterministic: the same input and the same SplitMix64 state give the same output
// on every platform; the loader parallelises across samples.
#include <torch/types.h>

#include <array>
#include <cstdint>

#include "mlseg/core/random.h"
#include "mlseg/data/augmentation_options.h"
#include "mlseg/data/cascade_transforms.h"
#include "mlseg/data/intensity_transforms.h"
#include "mlseg/data/spatial_transform.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

/// Everything the pipeline drew for one sample (for logs and tests).
struct AugmentationRecord {
  AugmentationMode mode = AugmentationMode::volume_3d;
  SpatialParameters spatial;
  IntensityRecord intensity;
  std::array<bool, 3> mirrored_zyx{false, false, false};
  CascadeRecord cascade;  ///< empty unless options.cascade().prior_channels() > 0
};

struct AugmentedSample {
  torch::Tensor image;  ///< float32 [C, patch_z, patch_y, patch_x]
  CodeVolume codes;     ///< [W, patch_z, patch_y, patch_x]
  AugmentationRecord record;
};

/// Augments one sample: `image` float32 [C, Z, Y, X] and `codes` of the same Z, Y, X, normally
/// cut at initial_patch_size(patch_size_zyx, options.spatial()) around the chosen centre.
/// Inputs are not modified. 2D samples are [C, 1, Y, X] with patch_size_zyx[0] == 1.
/// With options.cascade().prior_channels() = K > 0 the last K channels are the previous stage's
/// binary prediction: moved by the spatial transform and made binary again (>= 0.5), left alone by
/// the intensity transforms and masked_channels, then augmented by apply_cascade_transforms.
AugmentedSample augment_sample(const torch::Tensor& image, const CodeVolume& codes,
                               const std::array<std::int64_t, 3>& patch_size_zyx, const AugmentationOptions& options,
                               SplitMix64& rng);

/// The same with a generator seeded by `seed`.
AugmentedSample augment_sample(const torch::Tensor& image, const CodeVolume& codes,
                               const std::array<std::int64_t, 3>& patch_size_zyx, const AugmentationOptions& options,
                               std::uint64_t seed);

}  // namespace mlseg
