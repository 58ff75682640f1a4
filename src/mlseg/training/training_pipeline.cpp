#include "mlseg/training/training_pipeline.h"

#include <vector>

#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/training/run_setup.h"
#include "mlseg/training/training_step.h"

namespace mlseg {

TrainingPipeline training_pipeline(const RunSetup& run, const TrainOptions& options) {
  TrainingBatchOptions batch_options =
      TrainingBatchOptions().patch_size_zyx(run.patch).seed(options.seed).first_sample(run.share.begin).end_sample(run.share.end);
  AugmentationOptions& augmentation = batch_options.augmentation();
  // nnU-Net's MaskImageTransform for channels normalised inside the nonzero mask.
  std::vector<std::int64_t> masked_channels;
  const auto& normalization = run.plans.configuration(options.configuration).normalization;
  for (std::size_t c = 0; c < normalization.size(); ++c) {
    if (normalization[c].use_mask) masked_channels.push_back(static_cast<std::int64_t>(c));
  }
  augmentation.masked_channels(masked_channels);
  // The cascade: the previous stage's channels follow the image spatially, skip the intensity
  // transforms and get nnU-Net's cascade augmentations; one-hot (softmax) channels stay exclusive.
  if (run.store->prior_channels() > 0) {
    augmentation.cascade().prior_channels(run.store->prior_channels()).exclusive_priors(run.model.encoding.kind() == EncodingKind::softmax);
  }
  // Labels resample in augmentation as in preprocessing: the encoding says how.
  if (run.model.encoding.label_resampling() == LabelResampling::most_likely_combination) {
    augmentation.spatial().label_interpolation(LabelInterpolation::classes);
  }
  SamplerOptions sampler_options =
      SamplerOptions(run.batch_size, training_cut_size(batch_options)).final_patch_size_zyx(run.patch).seed(options.seed);
  if (run.remedies.sample_channels_by_weight) {
    sampler_options.forced_channel_weights(ForcedChannelWeights::inverse_frequency).channel_weights(run.remedies.sampling_weights);
  }
  return {batch_options, sampler_options};
}

Batch make_step_batch(const PreprocessedStore& store, const PatchSampler& sampler, const TrainingBatchOptions& options, const RunSetup& run,
                      std::int64_t index, SamplingReportAccumulator* coverage) {
  Batch batch = make_training_batch(store, sampler, options, index, coverage);
  const std::vector<ScaleTargets> targets = batch_targets(batch.tensors.at(1), run.model.encoding, run.scales, run.dimension, torch::kCPU);
  batch.tensors.resize(1);
  batch.tensors[0] = network_input(batch.tensors[0], run.dimension);
  for (const ScaleTargets& t : targets) {
    batch.tensors.push_back(t.target);
    batch.tensors.push_back(t.annotated);
  }
  return batch;
}

}  // namespace mlseg
