#include "mlseg/data/training_batches.h"

#include "mlseg/core/error.h"
#include "mlseg/data/augmentation.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/data/spatial_transform.h"

namespace mlseg {

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
  const auto draws = sampler.sample_batch(batch_index);
  std::vector<std::string> case_ids;
  for (const auto& draw : draws) case_ids.push_back(store.case_ids()[draw.case_index]);
  note_batch_cases(case_ids);
  std::vector<std::vector<torch::Tensor>> samples;
  samples.reserve(draws.size());
  for (std::size_t j = 0; j < draws.size(); ++j) {
    const CutPatch patch = store.cut_patch(draws[j].case_index, draws[j].begin_zyx, cut);
    // One generator per (seed, batch, sample), mixed so that neighbouring indices are unrelated.
    SplitMix64 mixer(options.seed() ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(batch_index + 1)));
    for (std::size_t k = 0; k <= j; ++k) mixer.next();
    SplitMix64 rng(mixer.next());
    AugmentedSample sample = augment_sample(patch.image, patch.codes, options.patch_size_zyx(), options.augmentation(), rng);
    if (report != nullptr) report->add(sample.codes, draws[j]);
    samples.push_back({sample.image, sample.codes.words});
  }
  return assemble_batch(batch_index, samples, std::move(case_ids));
}

}  // namespace mlseg
