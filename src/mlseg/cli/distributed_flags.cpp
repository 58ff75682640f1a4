#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/core/rank_launcher.h"

namespace mlseg::cli {

void add_distributed_flags(CLI::App& command, DistributedFlags& flags) {
  command.add_option("--nproc-per-node", flags.nproc_per_node,
                     "Start this many ranks on this machine (torchrun's variables; torchrun, srun or mpirun can start the "
                     "same command instead)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  command.add_option("--dist-timeout-s", flags.timeout_seconds,
                     "Seconds a rank waits for the others (rendezvous, each collective) before it fails")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 7 * 24 * 3600.0));
}

std::optional<int> launch_ranks_if_requested(const DistributedFlags& flags) {
  if (flags.nproc_per_node <= 1) return std::nullopt;
  if (launch_environment().distributed()) {
    throw Error("--nproc-per-node " + std::to_string(flags.nproc_per_node) + " inside a process that is already a rank (WORLD_SIZE is set)",
                "let one launcher start the ranks: drop --nproc-per-node, or run outside torchrun/srun");
  }
  LocalLaunchOptions launch;
  launch.processes = flags.nproc_per_node;
  launch.arguments = remembered_arguments_without("--nproc-per-node");
  launch.collective_timeout_seconds = flags.timeout_seconds;
  return launch_local_ranks(launch);
}

}  // namespace mlseg::cli
