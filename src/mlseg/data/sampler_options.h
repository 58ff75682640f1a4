#pragma once
// SamplerOptions: how training patches are drawn from the preprocessed store. Defaults are
// nnU-Net v2's data loader (nnunetv2/training/dataloading/data_loader.py; ANCHOR_FACTS.md §1):
// uniform cases with replacement, the last 33% of each batch forced onto foreground, the forced
// class chosen uniformly among those present in the case. LibTorch idiom: chained setters,
// e.g. SamplerOptions(2, {128, 128, 128}).case_sampling(CaseSampling::weighted).
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <vector>

namespace mlseg {

using PatchShapeZyx = std::array<std::int64_t, 3>;

/// How a forced (foreground) sample chooses the channel to centre on.
enum class ForcedChannelWeights {
  /// nnU-Net: pick the case first, then uniformly among the channels present in it (non-empty
  /// location groups). Frequent channels get most forced patches.
  uniform,
  /// channel_weights from analyze (labels.json / plans.json "sampling_weights", which equalise the
  /// channels' selection probabilities). The channel is picked first with probability
  /// weight / sum of the weights of channels present in the sampled cases, then a case that
  /// contains it uniformly: a channel's weight share is exactly its share of forced patches.
  inverse_frequency,
  /// Same mechanics as inverse_frequency with weights the user chose.
  user,
};

/// How each sample's case is drawn (with replacement).
enum class CaseSampling {
  /// nnU-Net: every case equally likely.
  uniform,
  /// Case weight = max over the channels present in the case of channel_weights[c]; a case
  /// without any channel gets the smallest positive channel weight (so it still comes up, as
  /// rarely as the most common channel's cases). Normalised to probabilities. Cases holding a rare
  /// channel come up more often. Used for non-forced samples and for forced samples under
  /// ForcedChannelWeights::uniform (the weighted modes pick their case through the channel).
  weighted,
};

struct SamplerOptions {
  SamplerOptions(std::int64_t batch_size, PatchShapeZyx patch_size_zyx)
      : batch_size_(batch_size), patch_size_zyx_(patch_size_zyx) {}

  /// Patches per batch (plans.json batch_size).
  TORCH_ARG(std::int64_t, batch_size);
  /// Size of the patch cut from the case: the "initial" size the spatial augmentation needs
  /// (nnU-Net's patch_size). 2D configurations pass {1, y, x}.
  TORCH_ARG(PatchShapeZyx, patch_size_zyx);
  /// The network's patch (nnU-Net's final_patch_size); need_to_pad starts at
  /// patch_size - final_patch_size so random crops reach the borders. {0, 0, 0}: same as
  /// patch_size_zyx (need_to_pad starts at 0).
  TORCH_ARG(PatchShapeZyx, final_patch_size_zyx) = PatchShapeZyx{0, 0, 0};
  /// nnU-Net oversample_foreground_percent: sample j of a batch is forced onto foreground iff
  /// j >= round(batch_size * (1 - foreground_oversample)) (round half to even, like Python).
  TORCH_ARG(double, foreground_oversample) = 0.33;
  TORCH_ARG(ForcedChannelWeights, forced_channel_weights) = ForcedChannelWeights::uniform;
  /// One weight >= 0 per label channel; needed by inverse_frequency, user and weighted case sampling.
  TORCH_ARG(std::vector<double>, channel_weights) = {};
  /// Probability that a forced sample centres on a rare combination's location group instead,
  /// when its case has one (0: nnU-Net, channels only).
  TORCH_ARG(double, target_rare_combinations) = 0.0;
  TORCH_ARG(CaseSampling, case_sampling) = CaseSampling::uniform;
  /// Every draw depends only on (seed, batch index, sample index).
  TORCH_ARG(std::uint64_t, seed) = 12345;
  /// Stores with an ignore flag: a non-forced random crop is redrawn while its centre voxel is
  /// ignored (or outside the case), up to this many times; then it centres on a stored location
  /// of any channel (annotated by construction), or keeps the last draw when the case has none.
  /// Approximates nnU-Net, which centres such samples on a random annotated voxel.
  TORCH_ARG(int, ignore_rejection_tries) = 16;
};

}  // namespace mlseg
