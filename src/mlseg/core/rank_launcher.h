#pragma once
// `mlseg train|predict ... --nproc-per-node N`: a local launcher in the manner of torchrun. It
// starts N copies of this executable with the same arguments (minus --nproc-per-node) and
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1,
// MASTER_PORT = a free port unless set), waits for them, and when one fails names it and makes
// sure the others stop. Torch-free: the ranks join their process group themselves
// (training/run_context.h), so the same binary runs under torchrun, srun or mpirun unchanged.
#include <string>
#include <vector>

#include "mlseg/core/launch_environment.h"

namespace mlseg {

/// Grace after the first failed rank before the launcher terminates the others, beyond their own
/// collective timeout (they normally notice the broken group at once and exit by themselves).
inline constexpr double kLauncherGraceSeconds = 30;

struct LocalLaunchOptions {
  int processes = 1;  ///< --nproc-per-node
  /// The command line to run in every rank (argv[1..], without --nproc-per-node).
  std::vector<std::string> arguments;
  /// Seconds the ranks give a collective before failing (--dist-timeout-s); the launcher waits
  /// this plus kLauncherGraceSeconds after a failure before it terminates the rest.
  double collective_timeout_seconds = kDefaultCollectiveTimeoutSeconds;
  std::string executable = "/proc/self/exe";
};

/// Runs the ranks and returns the launcher's exit code: 0 when every rank exited 0; else 128 +
/// signal of the first rank killed by a signal, or the first failed rank's exit code when none
/// was killed. Prints one line per failed rank.
int launch_local_ranks(const LocalLaunchOptions& options);

/// The process's command line (run_cli records it), for the launcher to repeat.
void remember_command_line(int argc, char** argv);
/// argv[1..] as remembered.
const std::vector<std::string>& remembered_arguments();
/// argv[1..] as remembered, with `option` and its value ("--opt V" or "--opt=V") removed.
std::vector<std::string> remembered_arguments_without(const std::string& option);

/// "mlseg (rank 1 of 2)" in a multi-process run, else "mlseg": the prefix of error lines.
std::string process_label();

}  // namespace mlseg
