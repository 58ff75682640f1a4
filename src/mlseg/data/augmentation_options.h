#pragma once
// Options of the training augmentation, one struct per stage, every default named once.
// The numbers are nnU-Net v2's default training transforms (nnUNetTrainer.get_training_transforms
// on batchgeneratorsv2; ANCHOR_FACTS.md section 6). LibTorch idiom: chained setters,
// e.g. AugmentationOptions().spatial(SpatialTransformOptions().rotation_probability(1.0)).
#include <torch/arg.h>

#include <cstdint>
#include <vector>

namespace mlseg {

/// How labels are resampled by the spatial transform.
enum class LabelInterpolation {
  /// Trilinear weights per output voxel; each channel bit (and the ignore bit) is set where the
  /// weighted vote of the 8 neighbours is >= label_threshold. Cost independent of label count.
  linear,
  /// The nearest neighbour's code (ties rounded up).
  nearest,
  /// Labels that are classes (softmax, powerset: LabelResampling::most_likely_combination):
  /// trilinear weights, and the whole code of largest summed weight wins (ties: the smaller code),
  /// so no combination appears that the corners did not have. Codes of several words (past 64
  /// channels) vote word by word; a combination that creates trains as its largest listed subset.
  classes,
};

struct SpatialTransformOptions {
  /// nnU-Net p_rotation.
  TORCH_ARG(double, rotation_probability) = 0.2;
  /// Angles U(-max, max) per axis for 3D patches (nnU-Net rotation_for_DA, 3D).
  TORCH_ARG(double, max_rotation_deg_3d) = 30.0;
  /// In-plane angle bound for dummy-2D patches and for 2D patches that are not elongated.
  TORCH_ARG(double, max_rotation_deg_in_plane) = 180.0;
  /// 2D patches whose longer edge exceeds elongated_2d_aspect_ratio x the shorter rotate less.
  TORCH_ARG(double, max_rotation_deg_2d_elongated) = 15.0;
  TORCH_ARG(double, elongated_2d_aspect_ratio) = 1.5;
  /// 3D patches with max(patch) / patch[0] above this are augmented slice-wise in 2D
  /// ("dummy 2D", nnU-Net's ANISO_THRESHOLD).
  TORCH_ARG(double, dummy_2d_anisotropy_threshold) = 3.0;
  /// nnU-Net p_scaling; one factor U(min_scale, max_scale) for all axes
  /// (p_synchronize_scaling_across_axes = 1). Factors < 1 zoom in (sample a smaller region).
  TORCH_ARG(double, scaling_probability) = 0.2;
  TORCH_ARG(double, min_scale) = 0.7;
  TORCH_ARG(double, max_scale) = 1.4;
  /// initial_patch_size divides by this scale bound, as nnU-Net's get_patch_size((0.85, 1.25)).
  TORCH_ARG(double, initial_patch_scale_bound) = 0.85;
  /// Elastic deformation is off in nnU-Net and not implemented here: a value > 0 throws.
  TORCH_ARG(double, elastic_probability) = 0.0;
  TORCH_ARG(LabelInterpolation, label_interpolation) = LabelInterpolation::linear;
  /// A channel bit is set where its interpolated weight is at least this.
  TORCH_ARG(double, label_threshold) = 0.5;
  /// Image value sampled outside the input (labels outside are background).
  TORCH_ARG(float, image_outside_value) = 0.0f;
  /// Draws without rotation resample axis by axis (the trilinear weights are a product of
  /// per-axis ones), several times faster; same values up to float rounding. Off: every draw
  /// takes the general per-voxel kernel (for comparing the two).
  TORCH_ARG(bool, separable_when_unrotated) = true;
};

/// Intensity transforms, applied in this order after the spatial transform. Each has a
/// probability per sample; "per channel" probabilities are then drawn per image channel.
struct IntensityTransformOptions {
  /// Gaussian noise. nnU-Net's noise_variance (0, 0.1) is used by batchgeneratorsv2 as the
  /// standard deviation of the noise, so it is named sigma here. One sigma and one noise field
  /// for all channels (synchronize_channels = True).
  TORCH_ARG(double, noise_probability) = 0.1;
  TORCH_ARG(double, noise_min_sigma) = 0.0;
  TORCH_ARG(double, noise_max_sigma) = 0.1;

  /// Separable Gaussian blur; sigma drawn per channel and per axis (synchronize_* = False).
  TORCH_ARG(double, blur_probability) = 0.2;
  TORCH_ARG(double, blur_probability_per_channel) = 0.5;
  TORCH_ARG(double, blur_min_sigma) = 0.5;
  TORCH_ARG(double, blur_max_sigma) = 1.0;
  /// Kernel size = nearest odd of sigma * truncate + 0.5 (batchgeneratorsv2 blur_dimension: 6).
  TORCH_ARG(double, blur_truncate) = 6.0;

  /// Multiplicative brightness, factor drawn BGContrast-style per channel.
  TORCH_ARG(double, brightness_probability) = 0.15;
  TORCH_ARG(double, brightness_min_factor) = 0.75;
  TORCH_ARG(double, brightness_max_factor) = 1.25;

  /// Contrast around the channel mean, clamped to the channel's former range when preserve_range.
  TORCH_ARG(double, contrast_probability) = 0.15;
  TORCH_ARG(double, contrast_min_factor) = 0.75;
  TORCH_ARG(double, contrast_max_factor) = 1.25;
  TORCH_ARG(bool, contrast_preserve_range) = true;

  /// Simulate low resolution: nearest-exact down by one zoom for all axes (per channel), linear up.
  TORCH_ARG(double, low_resolution_probability) = 0.25;
  TORCH_ARG(double, low_resolution_probability_per_channel) = 0.5;
  TORCH_ARG(double, low_resolution_min_zoom) = 0.5;
  TORCH_ARG(double, low_resolution_max_zoom) = 1.0;

  /// Gamma on the inverted image, then gamma; gamma drawn BGContrast-style per channel.
  TORCH_ARG(double, inverted_gamma_probability) = 0.1;
  TORCH_ARG(double, gamma_probability) = 0.3;
  TORCH_ARG(double, gamma_min) = 0.7;
  TORCH_ARG(double, gamma_max) = 1.5;
  TORCH_ARG(bool, gamma_retain_stats) = true;
};

/// The cascade's augmentation of the previous stage's prediction (nnUNetTrainer's is_cascaded
/// transforms): the last prior_channels image channels are binary masks of the 3d_lowres
/// prediction, moved by the spatial transform, spared by the intensity transforms, and then
/// dilated / eroded / opened / closed and stripped of a random component.
struct CascadeAugmentationOptions {
  /// The last K image channels are the previous stage's binary prediction; 0: not a cascade.
  TORCH_ARG(std::int64_t, prior_channels) = 0;
  /// The priors are exclusive (softmax one-hot, as nnU-Net's): voxels an operator adds to one
  /// channel are cleared in the others. false: overlapping sigmoid channels, each on its own.
  TORCH_ARG(bool, exclusive_priors) = false;
  /// ApplyRandomBinaryOperatorTransform's apply_probability per sample.
  TORCH_ARG(double, binary_operator_probability) = 0.4;
  /// Its p_per_label: each prior channel, in random order, gets an operator with this probability.
  TORCH_ARG(double, binary_operator_probability_per_channel) = 0.5;
  /// Its strel_size (1, 8): the ball's radius in voxels, drawn uniformly per channel.
  TORCH_ARG(double, min_structure_radius) = 1.0;
  TORCH_ARG(double, max_structure_radius) = 8.0;
  /// RemoveRandomConnectedComponentFromOneHotEncodingTransform's apply_probability per sample.
  TORCH_ARG(double, remove_component_probability) = 0.2;
  /// Its p_per_label: each prior channel, in random order, loses a component with this probability.
  TORCH_ARG(double, remove_component_probability_per_channel) = 0.5;
  /// Its dont_do_if_covers_more_than_x_percent: only components of fewer voxels than this
  /// fraction of the patch are removed (full connectivity).
  TORCH_ARG(double, remove_component_max_fraction) = 0.15;
};

struct AugmentationOptions {
  TORCH_ARG(SpatialTransformOptions, spatial) = {};
  TORCH_ARG(IntensityTransformOptions, intensity) = {};
  /// 3d_cascade_fullres: the previous stage's prediction among the image channels (off by default).
  TORCH_ARG(CascadeAugmentationOptions, cascade) = {};
  /// Each allowed axis is flipped independently with this probability (image and labels).
  TORCH_ARG(double, mirror_probability_per_axis) = 0.5;
  /// nnU-Net's MaskImageTransform: image channels normalised inside the nonzero mask (plans.json
  /// use_mask_for_norm; BraTS-like MRI). Their voxels outside the mask are 0 in the store, as at
  /// prediction; after the intensity transforms (which move those zeros: contrast, gamma, noise)
  /// they are set back to 0. Outside = where every listed channel is exactly 0 after the spatial
  /// transform, which includes its zero padding (nnU-Net marks the same voxels -1 in its stored
  /// segmentation and pads the segmentation with -1). Empty: no channel is masked.
  TORCH_ARG(std::vector<std::int64_t>, masked_channels) = {};

 public:
  /// Every probability 0: the pipeline only centre-crops (validation-style, and for tests).
  static AugmentationOptions none();
};

}  // namespace mlseg
