#pragma once
// The run context: who this process is in a run (rank, world size, whether it writes) and the
// collectives every cross-rank decision goes through, on PyTorch's own engine (c10d: a TCPStore
// rendezvous, then ProcessGroupGloo on CPU, ProcessGroupNCCL on CUDA when this LibTorch has it).
// A single-process run is the same object with world size 1, where every collective is a no-op,
// so the stages need no branch of their own. Every collective has a timeout; a failed one throws
// mlseg::Error naming the operation and, where it can tell, the rank that stopped.
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mlseg/core/launch_environment.h"

namespace mlseg {

/// How long the other ranks wait while rank 0 sets a run up alone (preprocessing, splits); rank
/// 0 stopping ends the wait at once (its store closes).
inline constexpr double kDefaultSetupTimeoutSeconds = 24 * 3600;
/// PyTorch DDP's bucket_cap_mb: gradients are all-reduced in flat buckets of about this size.
inline constexpr std::int64_t kGradientBucketBytes = 25ll << 20;

struct DistributedOptions {
  double collective_timeout_seconds = kDefaultCollectiveTimeoutSeconds;
  double setup_timeout_seconds = kDefaultSetupTimeoutSeconds;
};

/// Which slice [begin, end) of a global batch (or list) a rank takes: nnU-Net's
/// _set_batch_size_and_oversample split (the first `size % world` ranks get one more).
struct RankShare {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
};
/// Throws mlseg::Error when `total` < `world_size` (a rank would get nothing), as nnU-Net does.
RankShare rank_batch_share(std::int64_t total, int world_size, int rank);

/// True when this mlseg was built with a c10d backend (Gloo headers found at build time).
bool distributed_training_available();

class RunContext {
 public:
  /// One process: rank 0 of 1.
  RunContext();
  /// Joins the process group the launcher environment describes (one process when it describes
  /// none). `device`: where the tensors of the collectives live (NCCL for CUDA when available).
  static RunContext from_environment(const torch::Device& device, const DistributedOptions& options = {});
  static RunContext join(const LaunchEnvironment& env, const torch::Device& device, const DistributedOptions& options = {});

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  int local_world_size() const { return env_.local_world_size; }
  /// Rank 0: the one that writes shared files and prints.
  bool is_main() const { return env_.rank == 0; }
  bool distributed() const { return env_.world_size > 1; }
  /// "gloo" / "nccl" / "none".
  const std::string& backend() const;
  /// "rank 1 of 2 (gloo)".
  std::string describe() const;

  /// In place: the sum over ranks. `what` names the operation in errors.
  void all_reduce_sum(torch::Tensor& tensor, const std::string& what) const;
  /// In place: rank 0's value everywhere.
  void broadcast_from_main(torch::Tensor& tensor, const std::string& what) const;
  /// Rank 0's `decision`, on every rank.
  bool main_decides(bool decision, const std::string& what) const;
  /// True on every rank when `flag` is true on any.
  bool any(bool flag, const std::string& what) const;
  void barrier(const std::string& what) const;
  /// Rank 0 runs `work` while the others wait (setup timeout); an mlseg::Error thrown on rank 0
  /// is thrown on every rank, so all stop with the same message.
  void main_first(const std::string& what, const std::function<void()>& work) const;
  /// Gradients (and `loss`, a scalar, in the same reduction) averaged over ranks in flat buckets
  /// of kGradientBucketBytes, before clipping and the optimizer step; missing gradients count as
  /// zeros. A non-finite gradient or loss on any rank makes the average non-finite on all, so the
  /// decision to skip the step is the same everywhere.
  void average_gradients(const std::vector<torch::Tensor>& parameters, torch::Tensor& loss) const;
  /// Every tensor (parameters and buffers) set to rank 0's values.
  void broadcast_tensors(const std::vector<torch::Tensor>& tensors, const std::string& what) const;
  /// This rank's share of `count` items taken round robin (item i belongs to rank i % world).
  bool owns(std::int64_t item) const { return item % env_.world_size == env_.rank; }
  /// Tells the group why this rank stops (best effort), so the others can name it.
  void report_failure(const std::string& message) const noexcept;

  /// The sum over ranks, with gradient: forward all-reduces the sum; backward all-reduces the
  /// incoming gradient (every rank's loss depends on every rank's share). Batch Dice's global
  /// TP/FP/FN use it, as nnU-Net's AllGatherGrad. Identity for one process.
  torch::Tensor sum_across_ranks_with_grad(const torch::Tensor& tensor) const;

  struct Group;

 private:
  LaunchEnvironment env_;
  std::shared_ptr<Group> group_;
};

}  // namespace mlseg
