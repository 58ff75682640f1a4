// mlseg: one executable, one subcommand per pipeline stage.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"mlseg: self-configuring multi-label medical image segmentation (nnU-Net's pipeline, in C++)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mlseg 0.1.0");
  mlseg::cli::CommandRegistry registry;
  mlseg::cli::add_registered_commands(app, registry);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; any usage error is bad input: exit 2, like every other.
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  try {
    return registry.run_selected();
  } catch (const mlseg::Error& error) {
    std::fprintf(stderr, "mlseg: error: %s\n", error.what());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mlseg: internal error: %s\n  (please report this, with the command that caused it)\n",
                 error.what());
    return 3;
  }
}
