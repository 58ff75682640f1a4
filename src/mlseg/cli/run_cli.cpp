#include <cstdio>
#include <exception>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/core/rank_launcher.h"

namespace mlseg::cli {

void configure_app(CLI::App& app, CommandRegistry& registry) {
  app.description("mlseg: self-configuring multi-label medical image segmentation (nnU-Net's pipeline, in C++)");
  app.name("mlseg");
  app.require_subcommand(1);
  app.set_version_flag("--version", "mlseg 0.1.0");
  add_registered_commands(app, registry);
}

int run_cli(CLI::App& app, const CommandRegistry& registry, int argc, char** argv) {
  remember_command_line(argc, argv);  // --nproc-per-node repeats it in every rank
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
    std::fprintf(stderr, "%s: error: %s\n", mlseg::process_label().c_str(), error.what());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mlseg: internal error: %s\n  (please report this, with the command that caused it)\n",
                 mlseg::error_message(error).c_str());
    return 3;
  }
}

}  // namespace mlseg::cli
