#pragma once
// Where this process sits in a multi-process run, read from the standard launcher environment:
// torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT (which `mlseg ...
// --nproc-per-node N`, srun wrappers and mpirun scripts set too), else SLURM's own SLURM_PROCID /
// SLURM_STEP_NUM_TASKS (or SLURM_NTASKS) / SLURM_LOCALID under `srun`. Torch-free.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace mlseg {

/// torchrun's default rendezvous port, used when MASTER_PORT is unset.
inline constexpr int kDefaultMasterPort = 29500;
/// --dist-timeout-s: how long the rendezvous or a collective waits for the other ranks before it
/// fails (PyTorch's default is 30 min; a dead rank is usually noticed at once, this bounds a hung one).
inline constexpr double kDefaultCollectiveTimeoutSeconds = 600;

struct LaunchEnvironment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  /// Processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE, SLURM's
  /// SLURM_NTASKS_PER_NODE); they share its cores. 1 when unknown.
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = kDefaultMasterPort;
  /// "none" (one process), "torchrun" (RANK/WORLD_SIZE, whoever set them) or "slurm".
  std::string launcher = "none";

  bool distributed() const { return world_size > 1; }
  bool is_main() const { return rank == 0; }
};

/// Looks a variable up; nullopt when unset.
using EnvironmentLookup = std::function<std::optional<std::string>(const std::string&)>;

/// Reads the process environment. Throws mlseg::Error naming the variable when one is not a
/// number, RANK >= WORLD_SIZE, or a multi-process launch lacks MASTER_ADDR (SLURM:
/// SLURM_LAUNCH_NODE_IPADDR stands in for it).
LaunchEnvironment launch_environment();
LaunchEnvironment launch_environment(const EnvironmentLookup& lookup);

}  // namespace mlseg
