#include "mlseg/core/launch_environment.h"

#include <cstdlib>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

int integer_variable(const EnvironmentLookup& lookup, const std::string& name, int fallback, int minimum) {
  const std::optional<std::string> text = lookup(name);
  if (!text || text->empty()) return fallback;
  int value = 0;
  std::size_t used = 0;
  try {
    value = std::stoi(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text->size() || value < minimum) {
    throw Error("the environment variable " + name + "='" + *text + "' is not a number >= " + std::to_string(minimum),
                "set " + name + " as torchrun does (or unset it for a single-process run)");
  }
  return value;
}

}  // namespace

LaunchEnvironment launch_environment() {
  return launch_environment([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

LaunchEnvironment launch_environment(const EnvironmentLookup& lookup) {
  LaunchEnvironment env;
  std::string rank_name = "RANK", world_name = "WORLD_SIZE";
  if (lookup("WORLD_SIZE")) {
    env.launcher = "torchrun";
    env.world_size = integer_variable(lookup, "WORLD_SIZE", 1, 1);
    env.rank = integer_variable(lookup, "RANK", 0, 0);
    env.local_rank = integer_variable(lookup, "LOCAL_RANK", env.rank, 0);
    env.local_world_size = integer_variable(lookup, "LOCAL_WORLD_SIZE", 1, 1);
    if (env.world_size > 1 && !lookup("RANK")) {
      throw Error("WORLD_SIZE is " + std::to_string(env.world_size) + " but RANK is not set",
                  "set RANK (0 .. WORLD_SIZE-1) for every process, as torchrun does");
    }
  } else if (lookup("SLURM_PROCID") && (lookup("SLURM_STEP_NUM_TASKS") || lookup("SLURM_NTASKS"))) {
    // Under srun: the step's task count (SLURM_NTASKS is the whole allocation's, also set in a
    // batch script where only one process runs).
    env.launcher = "slurm";
    rank_name = "SLURM_PROCID";
    world_name = lookup("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
    env.world_size = integer_variable(lookup, world_name, 1, 1);
    env.rank = integer_variable(lookup, "SLURM_PROCID", 0, 0);
    env.local_rank = integer_variable(lookup, "SLURM_LOCALID", 0, 0);
    // "2" when every node runs the same number of tasks; "2(x3),1" forms are left at 1.
    const std::optional<std::string> per_node = lookup("SLURM_NTASKS_PER_NODE");
    if (per_node && !per_node->empty() && per_node->find_first_not_of("0123456789") == std::string::npos) {
      env.local_world_size = integer_variable(lookup, "SLURM_NTASKS_PER_NODE", 1, 1);
    }
  } else {
    return env;
  }
  if (env.rank >= env.world_size) {
    throw Error(rank_name + " is " + std::to_string(env.rank) + " but " + world_name + " is " + std::to_string(env.world_size),
                "ranks run from 0 to " + world_name + " - 1");
  }
  env.master_port = integer_variable(lookup, "MASTER_PORT", kDefaultMasterPort, 1);
  if (env.master_port > 65535) throw Error("MASTER_PORT is " + std::to_string(env.master_port), "pick a TCP port below 65536");
  if (const auto addr = lookup("MASTER_ADDR"); addr && !addr->empty()) {
    env.master_addr = *addr;
  } else if (const auto launch_node = lookup("SLURM_LAUNCH_NODE_IPADDR"); env.launcher == "slurm" && launch_node) {
    env.master_addr = *launch_node;
  } else if (env.distributed()) {
    throw Error("a " + std::to_string(env.world_size) + "-process run without MASTER_ADDR",
                "set MASTER_ADDR to the host of rank 0 (and MASTER_PORT, default 29500), as torchrun does");
  }
  return env;
}

}  // namespace mlseg
