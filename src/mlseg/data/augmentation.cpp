#include "mlseg/data/augmentation.h"

#include <string>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

/// The number of leading channels that are image intensities (the rest are the cascade's priors).
std::int64_t intensity_channel_count(std::int64_t channels, std::int64_t prior_channels) {
  if (prior_channels < 0 || (prior_channels > 0 && prior_channels >= channels)) {
    throw Error("augment_sample: cascade prior_channels is " + std::to_string(prior_channels) + " for an image of " +
                    std::to_string(channels) + " channels; at least one image channel must precede the priors",
                "set AugmentationOptions::cascade().prior_channels to the number of previous-stage channels appended "
                "to the image (0 when not training a cascade)");
  }
  return channels - prior_channels;
}

}  // namespace

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
  options.cascade().binary_operator_probability(0.0).remove_component_probability(0.0);
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
  const std::int64_t prior_channels = options.cascade().prior_channels();
  const std::int64_t image_channels = intensity_channel_count(sample.image.size(0), prior_channels);
  torch::Tensor priors = sample.image.narrow(0, image_channels, prior_channels);
  // The priors were interpolated linearly; from here on they are masks again.
  if (prior_channels > 0) priors.copy_(priors.ge(0.5));

  // MaskImageTransform: outside the nonzero mask before the intensity transforms, 0 after them.
  torch::Tensor outside;
  for (const std::int64_t c : options.masked_channels()) {
    if (c < 0 || c >= image_channels) continue;
    const torch::Tensor zero = sample.image[c].eq(0);
    outside = outside.defined() ? outside.logical_and_(zero) : zero;
  }
  // The intensity transforms work in place; on this contiguous view of the leading channels they
  // never touch the priors (nnU-Net appends them to the image only after these transforms).
  torch::Tensor intensity_channels = sample.image.narrow(0, 0, image_channels);
  apply_intensity_transforms(intensity_channels, options.intensity(), geometry.mode, rng, &sample.record.intensity);
  if (outside.defined()) {
    for (const std::int64_t c : options.masked_channels()) {
      if (c >= 0 && c < image_channels) sample.image[c].masked_fill_(outside, 0.0);
    }
  }
  if (prior_channels > 0) apply_cascade_transforms(priors, options.cascade(), rng, &sample.record.cascade);
  return sample;
}

AugmentedSample augment_sample(const torch::Tensor& image, const CodeVolume& codes,
                               const std::array<std::int64_t, 3>& patch_size_zyx, const AugmentationOptions& options,
                               std::uint64_t seed) {
  SplitMix64 rng(seed);
  return augment_sample(image, codes, patch_size_zyx, options, rng);
}

}  // namespace mlseg
