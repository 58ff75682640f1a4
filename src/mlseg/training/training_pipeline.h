#pragma once
// What makes a run's training batches: the augmentation and the sampler wired from the run's
// plans, encoding, store and remedies, and the batch a loader worker makes for one step. One
// place for the trainer and for the parity suite's end-to-end comparison of training batches with
// nnU-Net's data loader and training transforms. Internal to training/.
#include <cstdint>

#include "mlseg/data/batch_loader.h"
#include "mlseg/data/sampler_options.h"
#include "mlseg/data/training_batches.h"

namespace mlseg {

class PatchSampler;
class PreprocessedStore;
class SamplingReportAccumulator;
struct RunSetup;
struct TrainOptions;

/// The options of the run's training batches and of the sampler that draws them.
struct TrainingPipeline {
  TrainingBatchOptions batch_options;
  SamplerOptions sampler_options;
};

/// The pipeline of `run` (options.configuration, options.seed): nnU-Net's training transforms and
/// data loader with the run's masked channels (use_mask_for_norm), cascade priors, label
/// interpolation (the encoding's) and sampling remedies; the sampler cuts the augmentation's
/// initial patch size and draws from run.fold.train.
TrainingPipeline training_pipeline(const RunSetup& run, const TrainOptions& options);

/// The batch a loader worker makes for step `index`: make_training_batch's image (the network's
/// input layout), then per deep-supervision scale (full resolution first) the loss target and
/// annotation mask (undefined when no voxel is ignored). Made on the worker threads, so the training
/// loop only copies them to the device. `coverage`, when given, counts the patches' channels.
Batch make_step_batch(const PreprocessedStore& store, const PatchSampler& sampler, const TrainingBatchOptions& options, const RunSetup& run,
                      std::int64_t index, SamplingReportAccumulator* coverage = nullptr);

}  // namespace mlseg
