#pragma once
// Subcommand registration: each command file adds its CLI11 subcommand and the function to run.
#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <vector>

#include "mlseg/core/launch_environment.h"

namespace mlseg::cli {

/// Flags every command shares (ARCHITECTURE.md "Common flags"); each command adds those it uses.
struct CommonFlags {
  int threads = 0;     ///< --threads N; 0 = all cores
  bool quiet = false;  ///< -q: no progress, no summary lines
  bool verbose = false;
  bool json = false;   ///< --json: machine-readable output on stdout
};

void add_common_flags(CLI::App& command, CommonFlags& flags, bool with_json);

/// Multi-process flags of train and predict (training/run_context.h, core/rank_launcher.h).
struct DistributedFlags {
  int nproc_per_node = 1;  ///< --nproc-per-node: ranks to start on this machine (1 = this process)
  double timeout_seconds = kDefaultCollectiveTimeoutSeconds;  ///< --dist-timeout-s
};
void add_distributed_flags(CLI::App& command, DistributedFlags& flags);
/// --nproc-per-node N > 1: runs N ranks of this same command line and returns the launcher's exit
/// code; nullopt when this process is to do the work itself. Refused inside a launched rank.
std::optional<int> launch_ranks_if_requested(const DistributedFlags& flags);

class CommandRegistry {
 public:
  void add(CLI::App* command, std::function<int()> run) { commands_.push_back({command, std::move(run)}); }
  /// Runs the subcommand the user chose; returns its exit code.
  int run_selected() const {
    for (const auto& [command, run] : commands_) {
      if (command->parsed()) return run();
    }
    return 2;
  }

 private:
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

/// Each command file registers itself (no central list to edit):
///   static const RegisterCommand registered(kOrderVerify, add_verify_command);
/// `order` is the subcommand's place in --help: the pipeline's order.
using CommandFactory = void (*)(CLI::App& app, CommandRegistry& registry);
struct RegisterCommand {
  RegisterCommand(int order, CommandFactory factory);
};
/// Adds every registered command to `app`, in pipeline order.
void add_registered_commands(CLI::App& app, CommandRegistry& registry);

inline constexpr int kOrderSynth = 0, kOrderVerify = 1, kOrderAnalyze = 2, kOrderPlan = 3, kOrderPreprocess = 4,
                     kOrderTrain = 5, kOrderPredict = 6, kOrderEvaluate = 7, kOrderFindBestConfig = 8, kOrderEnsemble = 9,
                     kOrderPostprocess = 10, kOrderReport = 11, kOrderDemo = 12;

/// The application both executables build: name, version flag, the registered commands.
void configure_app(CLI::App& app, CommandRegistry& registry);

/// Parses argv and runs the chosen command: exit 0 on success and for --help/--version, 2 for
/// bad input (usage errors and mlseg::Error), 3 for internal errors.
int run_cli(CLI::App& app, const CommandRegistry& registry, int argc, char** argv);

}  // namespace mlseg::cli
