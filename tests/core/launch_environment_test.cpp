// Where a process sits in a multi-process run: torchrun's and SLURM's variables, and the errors
// for inconsistent ones.
#include "mlseg/core/launch_environment.h"

#include <gtest/gtest.h>

#include <map>

#include "mlseg/core/error.h"

namespace {

using namespace mlseg;

EnvironmentLookup from(std::map<std::string, std::string> variables) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    const auto found = variables.find(name);
    if (found == variables.end()) return std::nullopt;
    return found->second;
  };
}

TEST(LaunchEnvironment, NoVariablesIsOneProcess) {
  const LaunchEnvironment env = launch_environment(from({}));
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.launcher, "none");
}

TEST(LaunchEnvironment, TorchrunVariables) {
  const LaunchEnvironment env = launch_environment(from({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                                         {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "node7"},
                                                         {"MASTER_PORT", "29777"}}));
  EXPECT_EQ(env.launcher, "torchrun");
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "node7");
  EXPECT_EQ(env.master_port, 29777);
  EXPECT_FALSE(env.is_main());
}

TEST(LaunchEnvironment, TorchrunDefaultsPortAndWorldSizeOneNeedsNoMaster) {
  EXPECT_EQ(launch_environment(from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}})).master_port, kDefaultMasterPort);
  EXPECT_FALSE(launch_environment(from({{"RANK", "0"}, {"WORLD_SIZE", "1"}})).distributed());
}

TEST(LaunchEnvironment, SlurmStepVariables) {
  const LaunchEnvironment env =
      launch_environment(from({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_LOCALID", "1"},
                               {"SLURM_NTASKS_PER_NODE", "4"}, {"SLURM_LAUNCH_NODE_IPADDR", "10.0.0.9"}}));
  EXPECT_EQ(env.launcher, "slurm");
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);  // the srun step's tasks, not the allocation's
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 4);
  EXPECT_EQ(env.master_addr, "10.0.0.9");
}

TEST(LaunchEnvironment, TorchrunVariablesWinOverSlurm) {
  const LaunchEnvironment env = launch_environment(
      from({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}}));
  EXPECT_EQ(env.launcher, "torchrun");
  EXPECT_EQ(env.rank, 1);
}

TEST(LaunchEnvironment, InconsistentVariablesNameTheVariable) {
  auto message = [](std::map<std::string, std::string> variables) {
    try {
      launch_environment(from(std::move(variables)));
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}).find("RANK is 2 but WORLD_SIZE is 2"), std::string::npos);
  EXPECT_NE(message({{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}).find("RANK='x'"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR"), std::string::npos);
  EXPECT_NE(message({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}).find("RANK is not set"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT"),
            std::string::npos);
}

}  // namespace
