#pragma once
// Training batches: the sampler's draws, each cut from the store at the augmentation's initial
// patch size, augmented, and stacked. This is the make_batch a BatchLoader runs for the trainer.
#include <array>
#include <cstdint>

#include "mlseg/data/augmentation_options.h"
#include "mlseg/data/batch_loader.h"
#include "mlseg/data/sampler_options.h"

namespace mlseg {

class PreprocessedStore;
class PatchSampler;
class SamplingReportAccumulator;

struct TrainingBatchOptions {
  /// The network's patch (plans.json patch_size; 2D: {1, y, x}).
  TORCH_ARG(PatchShapeZyx, patch_size_zyx) = PatchShapeZyx{0, 0, 0};
  TORCH_ARG(AugmentationOptions, augmentation) = {};
  /// Sample j of batch i is augmented with a generator seeded from (seed, i, j)
  /// (augmentation_stream_seed): the same batches for any number of loader workers.
  TORCH_ARG(std::uint64_t, seed) = 12345;
  /// Which samples of each global batch this process makes, [first_sample, end_sample) (a
  /// rank's share under data parallelism; RunContext's rank_batch_share). end_sample < 0: the
  /// sampler's whole batch. Sample j is the same draw and augmentation whichever process makes
  /// it, so ranks together make exactly the one-process batch.
  TORCH_ARG(std::int64_t, first_sample) = 0;
  TORCH_ARG(std::int64_t, end_sample) = -1;
};

/// Sample `sample_in_batch` of batch `batch_index` is augmented with SplitMix64 seeded with this:
/// stream_seed in a domain of its own (seed XOR kAugmentationStream), so that no two samples share
/// augmentation draws and none follows the sampler's stream for the same sample.
inline constexpr std::uint64_t kAugmentationStream = 0xa0761d6478bd642fULL;
std::uint64_t augmentation_stream_seed(std::uint64_t seed, std::int64_t batch_index, std::int64_t sample_in_batch);

/// The size the sampler must cut for `options` (augmentation's initial_patch_size).
PatchShapeZyx training_cut_size(const TrainingBatchOptions& options);

/// Batch `batch_index`: tensors = {image [B, C, z, y, x] float32, codes [B, W, z, y, x]} at the
/// network's patch size. The sampler must have been built with patch_size_zyx =
/// training_cut_size(options) and final_patch_size_zyx = options.patch_size_zyx(). When `report`
/// is given, the augmented patches' channels are counted into it.
Batch make_training_batch(const PreprocessedStore& store, const PatchSampler& sampler, const TrainingBatchOptions& options,
                          std::int64_t batch_index, SamplingReportAccumulator* report = nullptr);

}  // namespace mlseg
