// mlseg: the command users run. Loading LibTorch costs ~0.8 s per process, which would be most of
// an `mlseg evaluate` run, so this executable is built without it: it runs the torch-free
// commands (those linked into it: evaluate) itself and replaces itself (execv) with mlseg-full,
// from its own folder, for everything else, --help and --version included.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "mlseg/cli/commands.h"
#include "mlseg/core/allocator.h"

namespace {

constexpr const char* kFullExecutable = "mlseg-full";

// The subcommand named on the command line: the first argument that is not a flag.
std::string subcommand_of(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] != '-') return argv[i];
  }
  return {};
}

int hand_to_full_executable(char** argv) {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  const std::filesystem::path full = (error ? std::filesystem::path(argv[0]) : self).parent_path() / kFullExecutable;
  execv(full.c_str(), argv);
  std::fprintf(stderr,
               "mlseg: error: cannot start %s (%s); every command except evaluate runs in it\n"
               "  fix: build or install mlseg-full next to mlseg (cmake --build builds both)\n",
               full.c_str(), std::strerror(errno));
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app;
  mlseg::cli::CommandRegistry registry;
  mlseg::cli::configure_app(app, registry);
  const std::string command = subcommand_of(argc, argv);
  const CLI::App& configured = app;
  bool here = false;
  for (const CLI::App* subcommand : configured.get_subcommands([](const CLI::App*) { return true; })) {
    here |= !command.empty() && subcommand->check_name(command);
  }
  if (!here) return hand_to_full_executable(argv);
  mlseg::core::tune_allocator();
  return mlseg::cli::run_cli(app, registry, argc, argv);
}
