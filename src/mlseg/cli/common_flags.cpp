#include "mlseg/cli/commands.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace mlseg::cli {
namespace {
std::vector<std::pair<int, CommandFactory>>& factories() {
  static std::vector<std::pair<int, CommandFactory>> registered;
  return registered;
}
}  // namespace

RegisterCommand::RegisterCommand(int order, CommandFactory factory) { factories().emplace_back(order, factory); }

void add_registered_commands(CLI::App& app, CommandRegistry& registry) {
  auto sorted = factories();
  std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (const auto& [order, factory] : sorted) factory(app, registry);
}

void add_common_flags(CLI::App& command, CommonFlags& flags, bool with_json) {
  command.add_option("--threads", flags.threads, "Worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  command.add_flag("-q,--quiet", flags.quiet, "No progress output");
  command.add_flag("-v,--verbose", flags.verbose, "More detail");
  if (with_json) command.add_flag("--json", flags.json, "Machine-readable JSON on stdout");
}

}  // namespace mlseg::cli
