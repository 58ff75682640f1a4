// mlseg-full: every subcommand, one per pipeline stage (`mlseg` hands it what it does not run itself).
#include <CLI/CLI.hpp>

#include "mlseg/cli/commands.h"
#include "mlseg/core/allocator.h"

int main(int argc, char** argv) {
  mlseg::core::tune_allocator();
  CLI::App app;
  mlseg::cli::CommandRegistry registry;
  mlseg::cli::configure_app(app, registry);
  return mlseg::cli::run_cli(app, registry, argc, argv);
}
