#pragma once
// BatchLoader: a threaded producer of training batches. Workers call make_batch(index) for
// consecutive indices; next() hands the batches out strictly in index order, so the sequence is
// the same for any number of workers (make_batch must depend only on the index, as
// PatchSampler::sample_batch does). At most `prefetch` batches are made ahead of the consumer.
#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlseg {

class PreprocessedStore;
class PatchSampler;
class SamplingReportAccumulator;

/// What a worker produces: tensors in the order the trainer expects ([B, ...], contiguous) and
/// the cases they came from.
struct Batch {
  std::int64_t index = -1;
  std::vector<torch::Tensor> tensors;
  std::vector<std::string> case_ids;
};

/// max(1, hardware threads - 1): one core stays free for the training loop.
int default_loader_workers();

struct LoaderOptions {
  /// Worker threads (default_loader_workers()).
  TORCH_ARG(int, workers) = default_loader_workers();
  /// Batches made or being made ahead of the consumer (bounded queue), at least 1.
  TORCH_ARG(int, prefetch) = 4;
  /// Copy batch tensors into page-locked memory for faster host-to-GPU copies. Only done when
  /// torch::cuda::is_available(); ignored otherwise.
  TORCH_ARG(bool, pin_memory) = false;
  /// Index of the first batch next() returns.
  TORCH_ARG(std::int64_t, first_batch) = 0;
  /// Batches to produce; -1: no end (the consumer stops by destroying the loader).
  TORCH_ARG(std::int64_t, num_batches) = -1;
};

/// Called by make_batch once it knows its cases, so that a failure of the batch names them.
void note_batch_cases(std::vector<std::string> case_ids);

class BatchLoader {
 public:
  using MakeBatch = std::function<Batch(std::int64_t batch_index)>;
  BatchLoader(MakeBatch make_batch, LoaderOptions options = {});
  /// Stops the workers; a batch being made is finished, nothing else is started. Never waits
  /// for the consumer.
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// The next batch in index order; std::nullopt after num_batches. A batch whose make_batch
  /// threw is rethrown here as mlseg::Error naming the batch index and its cases (when noted),
  /// with the original message; the following call returns the next batch.
  std::optional<Batch> next();

  const LoaderOptions& options() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Stacks per-sample tensors (samples[b][k]) into contiguous [B, ...] tensors, one per k.
/// Throws mlseg::Error when samples disagree in tensor count, shape or type.
Batch assemble_batch(std::int64_t batch_index, const std::vector<std::vector<torch::Tensor>>& samples,
                     std::vector<std::string> case_ids = {});

/// A batch of raw patches (no augmentation): sampler.sample_batch(batch_index), each cut from
/// the store. tensors = {image [B, C, z, y, x] float32, codes [B, W, z, y, x]}. When `report` is
/// given, every patch's channels are counted into it.
Batch cut_patch_batch(const PreprocessedStore& store, const PatchSampler& sampler, std::int64_t batch_index,
                      SamplingReportAccumulator* report = nullptr);

}  // namespace mlseg
