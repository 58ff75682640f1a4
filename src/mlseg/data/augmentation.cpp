#include "mlseg/data/augmentation.h"

namespace mlseg {

AugmentationOptions AugmentationOptions::none() {
  AugmentationOptions options;
  options.spatial().rotation_probability(0.0).scaling_probability(0.0);
  options.intensity()
      .noise_probability(0.0)
      .blur_probability(0.0)
      .brightness_probability(0.0)
      .contrast_probability(0.0)
      .low_resolution_probability(0.0)
      .inverted_gamma_probability(0.0)
      .gamma_probability(0.0);
  options.mirror_probability_per_axis(0.0);
  return options;
}

AugmentedSample augment_sample(const torch::Tensor& image, const CodeVolume& codes,
                               const std::array<std::int64_t, 3>& patch_size_zyx, const AugmentationOptions& options,
                               SplitMix64& rng) {
  AugmentedSample sample;
  const AugmentationGeometry geometry = augmentation_geometry(patch_size_zyx, options.spatial());
  sample.record.mode = geometry.mode;
  sample.record.spatial = sample_spatial_parameters(geometry, options.spatial(), rng);
  // MirrorTransform: one draw per allowed axis. nnU-Net mirrors last; here the flip is drawn
  // first and made by the spatial pass, which saves a pass over the patch. The intensity
  // transforms in between do not depend on orientation (per-voxel maps, whole-patch statistics,
  // symmetric blur kernels, i.i.d. noise), so the augmented samples have the same distribution.
  for (const int axis : geometry.mirror_axes) {
    sample.record.mirrored_zyx[static_cast<std::size_t>(axis)] = rng.uniform() < options.mirror_probability_per_axis();
  }
  SpatialOutput spatial = apply_spatial_transform(image, codes, patch_size_zyx, geometry, sample.record.spatial,
                                                  options.spatial(), sample.record.mirrored_zyx);
  sample.image = std::move(spatial.image);
  sample.codes = std::move(spatial.codes);

  // MaskImageTransform: outside the nonzero mask before the intensity transforms, 0 after them.
  torch::Tensor outside;
  for (const std::int64_t c : options.masked_channels()) {
    if (c < 0 || c >= sample.image.size(0)) continue;
    const torch::Tensor zero = sample.image[c].eq(0);
    outside = outside.defined() ? outside.logical_and_(zero) : zero;
  }
  apply_intensity_transforms(sample.image, options.intensity(), geometry.mode, rng, &sample.record.intensity);
  if (outside.defined()) {
    for (const std::int64_t c : options.masked_channels()) {
      if (c >= 0 && c < sample.image.size(0)) sample.image[c].masked_fill_(outside, 0.0);
    }
  }
  return sample;
}

AugmentedSample augment_sample(const torch::Tensor& image, const CodeVolume& codes,
                               const std::array<std::int64_t, 3>& patch_size_zyx, const AugmentationOptions& options,
                               std::uint64_t seed) {
  SplitMix64 rng(seed);
  return augment_sample(image, codes, patch_size_zyx, options, rng);
}

}  // namespace mlseg
