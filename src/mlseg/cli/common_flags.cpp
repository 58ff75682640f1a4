#include "mlseg/cli/commands.h"

namespace mlseg::cli {

void add_common_flags(CLI::App& command, CommonFlags& flags, bool with_json) {
  command.add_option("--threads", flags.threads, "Worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  command.add_flag("-q,--quiet", flags.quiet, "No progress output");
  command.add_flag("-v,--verbose", flags.verbose, "More detail");
  if (with_json) command.add_flag("--json", flags.json, "Machine-readable JSON on stdout");
}

}  // namespace mlseg::cli
