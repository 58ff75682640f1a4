#include "mlseg/data/training_batches.h"

#include "mlseg/core/error.h"
#include "mlseg/core/random.h"
#include "mlseg/data/augmentation.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/data/spatial_transform.h"

namespace mlseg {

std::uint64_t augmentation_stream_seed(std::uint64_t seed, std::int64_t batch_index, std::int64_t sample_in_batch) {
  return stream_seed(seed ^ kAugmentationStream, batch_index, sample_in_batch);
}

PatchShapeZyx training_cut_size(const TrainingBatchOptions& options) {
  return initial_patch_size(options.patch_size_zyx(), options.augmentation().spatial());
}

Batch make_training_batch(const PreprocessedStore& store, const PatchSampler& sampler, const TrainingBatchOptions& options,
                          std::int64_t batch_index, SamplingReportAccumulator* report) {
  const PatchShapeZyx cut = training_cut_size(options);
  if (sampler.options().patch_size_zyx() != cut) {
    throw Error("the sampler cuts patches of another size than the augmentation needs",
                "build the PatchSampler with patch_size_zyx = training_cut_size(options)");
  }
  const std::int64_t end = options.end_sample() < 0 ? sampler.options().batch_size() : options.end_sample();
  if (options.first_sample() < 0 || options.first_sample() >= end || end > sampler.options().batch_size()) {
    throw Error("samples [" + std::to_string(options.first_sample()) + ", " + std::to_string(end) + ") are not part of a batch of " +
                    std::to_string(sampler.options().batch_size()),
                "pass a non-empty range within the sampler's batch size");
  }
  std::vector<PatchDraw> draws;
  for (std::int64_t j = options.first_sample(); j < end; ++j) draws.push_back(sampler.sample(batch_index, j));
  std::vector<std::string> case_ids;
  for (const auto& draw : draws) case_ids.push_back(store.case_ids()[draw.case_index]);
  note_batch_cases(case_ids);
  std::vector<std::vector<torch::Tensor>> samples;
  samples.reserve(draws.size());
  const PatchShapeZyx& final_size = options.patch_size_zyx();
  const AugmentationGeometry geometry = augmentation_geometry(final_size, options.augmentation().spatial());
  for (std::size_t j = 0; j < draws.size(); ++j) {
    const std::int64_t sample_in_batch = options.first_sample() + static_cast<std::int64_t>(j);
    SplitMix64 rng(augmentation_stream_seed(options.seed(), batch_index, sample_in_batch));
    // The spatial draw comes first from this generator: peeked at here, it decides the cut. A
    // draw without rotation or scaling (64 % with nnU-Net's probabilities) keeps only the centre
    // patch of the initial cut, so only that patch is cut (its lower corner moved by the centre
    // crop's offset): the same voxels, padding included, without copying the initial patch
    // (2.4 times larger per axis for 128^3) out of the store.
    SplitMix64 peek = rng;
    const SpatialParameters spatial = sample_spatial_parameters(geometry, options.augmentation().spatial(), peek);
    PatchShapeZyx begin = draws[j].begin_zyx, size = cut;
    if (spatial.is_identity()) {
      for (int axis = 0; axis < 3; ++axis) {
        const auto a = static_cast<std::size_t>(axis);
        begin[a] += cut[a] / 2 - final_size[a] / 2;
      }
      size = final_size;
    }
    // The cut is only read by the augmentation: one buffer per loader thread, reused (a fresh
    // initial patch of 205^3 floats is 34 MB of new pages to fault in for every sample).
    thread_local CutPatch cut_buffer;
    store.cut_patch_into(draws[j].case_index, begin, size, cut_buffer);
    AugmentedSample sample = augment_sample(cut_buffer.image, cut_buffer.codes, final_size, options.augmentation(), rng);
    if (report != nullptr) report->add(sample.codes, draws[j]);
    samples.push_back({sample.image, sample.codes.words});
  }
  return assemble_batch(batch_index, samples, std::move(case_ids));
}

}  // namespace mlseg
