#pragma once
// Subcommand registration: each command file adds its CLI11 subcommand and the function to run.
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace mlseg::cli {

/// Flags every command shares (ARCHITECTURE.md "Common flags"); each command adds those it uses.
struct CommonFlags {
  int threads = 0;     ///< --threads N; 0 = all cores
  bool quiet = false;  ///< -q: no progress, no summary lines
  bool verbose = false;
  bool json = false;   ///< --json: machine-readable output on stdout
};

void add_common_flags(CLI::App& command, CommonFlags& flags, bool with_json);

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

void add_synth_command(CLI::App& app, CommandRegistry& registry);
void add_verify_command(CLI::App& app, CommandRegistry& registry);

}  // namespace mlseg::cli
