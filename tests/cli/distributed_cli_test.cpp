// Data-parallel training and prediction through the command line, 2 ranks on loopback (Gloo):
// a 2-rank run with per-rank batch b equals a one-process run with batch 2b step by step; its
// validation counts equal the one-process counts; it leaves one log, one set of checkpoints and
// no nan; --resume continues a stopped 2-rank run exactly; killing a rank stops the other within
// the timeout, naming the rank; predicting with 2 ranks writes every case exactly once.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "mlseg/io/json_file.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/training/run_context.h"
#include "run_executable.h"
#include "training/training_test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;


std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The tiny phantom with a global batch of 4 (2 per rank) and, optionally, batch Dice.
mlseg::testing::TinyTrainingDataset make_dataset(const fs::path& dir, bool batch_dice = false) {
  auto data = mlseg::testing::make_tiny_training_dataset(dir, 3, PhantomLabelFormat::bitmask, 8);
  const fs::path plans_path = data.dataset_work / "plans.json";
  nlohmann::ordered_json plans = read_json_file(plans_path);
  plans["configurations"]["3d_fullres"]["batch_size"] = 4;
  plans["configurations"]["3d_fullres"]["batch_dice"] = batch_dice;
  write_json_file(plans_path, plans);
  return data;
}

std::string train_arguments(const mlseg::testing::TinyTrainingDataset& data, const fs::path& work, const std::string& extra) {
  return "train " + data.raw.string() + " --work-dir " + work.string() +
         " --epochs 2 --iters-per-epoch 3 --val-iterations 3 --loader-workers 1 --threads 1 " + extra;
}

fs::path fold_dir(const fs::path& work) { return work / "Dataset900_Phantom/results/3d_fullres/fold_0"; }


// log.jsonl's validation counts per epoch (timings and paths differ between runs).
std::vector<std::string> validation_counts(const fs::path& log) {
  std::vector<std::string> out;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json validation = nlohmann::json::parse(line).at("validation");
    validation.erase("seconds");
    out.push_back(validation.dump());
  }
  return out;
}

// Starts two ranks the torchrun way in the background of a script, waits until epoch 1 is
// logged, then runs `then` (shell, with $p0 / $p1 the ranks' pids) and prints rank 0's exit code,
// the seconds rank 0 took to exit after `then`, and rank 0's output.
std::string two_ranks_then(const fs::path& dir, const fs::path& fold, const std::string& arguments, const std::string& then) {
  const fs::path script = dir / "two_ranks.sh", out0 = dir / "rank0.txt", out1 = dir / "rank1.txt";
  std::ofstream(script) << "M=" << MLSEG_EXECUTABLE << "\n"
                        << "export WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" << mlseg::testing::free_loopback_port() << "\n"
                        << "RANK=0 LOCAL_RANK=0 $M " << arguments << " > " << out0.string() << " 2>&1 & p0=$!\n"
                        << "RANK=1 LOCAL_RANK=1 $M " << arguments << " > " << out1.string() << " 2>&1 & p1=$!\n"
                        << "for i in $(seq 1 300); do [ -s " << (fold / "log.jsonl").string() << " ] && break; sleep 0.1; done\n"
                        << then << "\nstart=$(date +%s.%N)\n"
                        << "wait $p0; rc=$?; end=$(date +%s.%N)\n"
                        << "kill -9 $p1 2>/dev/null; wait $p1 2>/dev/null\n"
                        << "echo \"rank0_exit=$rc seconds=$(awk \"BEGIN{print $end-$start}\")\"\n"
                        << "cat " << out0.string() << "\n";
  return mlseg::testing::run_executable("/bin/bash", script.string()).output;
}

TEST(DistributedTraining, TwoRanksEqualOneProcessWithTheWholeBatchAndWriteOnce) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  const fs::path one = dir.path() / "one", two = dir.path() / "two";
  fs::copy(data.work, one, fs::copy_options::recursive);
  fs::copy(data.work, two, fs::copy_options::recursive);
  const auto single = mlseg::testing::run_mlseg(train_arguments(data, one, "--skip-final-validation"));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto ranks = mlseg::testing::run_mlseg(train_arguments(data, two, "--nproc-per-node 2"));
  ASSERT_EQ(ranks.exit_code, 0) << ranks.output;
  EXPECT_NE(ranks.output.find("data parallel: 2 ranks (gloo), global batch 4 split 2 on rank 0"), std::string::npos) << ranks.output;

  // Same initial weights, same samples, gradients averaged: the same parameters after 6 steps.
  EXPECT_LT(mlseg::testing::max_parameter_difference(fold_dir(one) / "checkpoint_final.pt", fold_dir(two) / "checkpoint_final.pt"), 2e-5);
  // Validation shared between the ranks, counts summed: the one-process counts and Dice.
  const auto single_counts = validation_counts(fold_dir(one) / "log.jsonl");
  ASSERT_EQ(single_counts.size(), 2u);
  EXPECT_EQ(validation_counts(fold_dir(two) / "log.jsonl"), single_counts);

  // One writer: one log with one line per epoch, one set of checkpoints, no leftovers.
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(fold_dir(two))) names.insert(entry.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"checkpoint_best.pt", "checkpoint_best.pt.check", "checkpoint_final.pt",
                                          "checkpoint_final.pt.check", "checkpoint_latest.pt", "checkpoint_latest.pt.check",
                                          "log.jsonl", "progress.svg", "validation"}));
  std::ifstream log(fold_dir(two) / "log.jsonl");
  EXPECT_EQ(std::count(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>(), '\n'), 2);
  // Final validation: each rank predicted its share; rank 0 scored all 2 cases once.
  const nlohmann::json summary = read_json_file(fold_dir(two) / "validation/summary.json");
  EXPECT_EQ(summary.at("metric_per_case").size(), 2u) << summary.dump().substr(0, 400);
  const std::regex nan_word("\\bnan\\b", std::regex::icase);
  EXPECT_FALSE(std::regex_search(ranks.output, nan_word)) << ranks.output;
  EXPECT_FALSE(std::regex_search(read_text(fold_dir(two) / "log.jsonl"), nan_word));
  EXPECT_FALSE(std::regex_search(read_text(fold_dir(two) / "validation/summary.json"), nan_word));
}

TEST(DistributedTraining, BatchDiceOverTwoRanksEqualsOneProcess) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path(), /*batch_dice=*/true);
  const fs::path one = dir.path() / "one", two = dir.path() / "two";
  fs::copy(data.work, one, fs::copy_options::recursive);
  fs::copy(data.work, two, fs::copy_options::recursive);
  ASSERT_EQ(mlseg::testing::run_mlseg(train_arguments(data, one, "--skip-final-validation")).exit_code, 0);
  const auto ranks = mlseg::testing::run_mlseg(train_arguments(data, two, "--skip-final-validation --nproc-per-node 2"));
  ASSERT_EQ(ranks.exit_code, 0) << ranks.output;
  EXPECT_LT(mlseg::testing::max_parameter_difference(fold_dir(one) / "checkpoint_final.pt", fold_dir(two) / "checkpoint_final.pt"), 2e-5);
}

TEST(DistributedTraining, ResumeContinuesAStoppedTwoRankRunExactly) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  const fs::path whole = dir.path() / "whole", chunks = dir.path() / "chunks";
  fs::copy(data.work, whole, fs::copy_options::recursive);
  fs::copy(data.work, chunks, fs::copy_options::recursive);
  const std::string common = "--skip-final-validation --nproc-per-node 2";
  ASSERT_EQ(mlseg::testing::run_mlseg(train_arguments(data, whole, common)).exit_code, 0);
  const auto first = mlseg::testing::run_mlseg(train_arguments(data, chunks, common + " --stop-after-epoch 1"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto resumed = mlseg::testing::run_mlseg(train_arguments(data, chunks, common + " --resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming fold 0 at epoch 2"), std::string::npos) << resumed.output;
  EXPECT_EQ(mlseg::testing::max_parameter_difference(fold_dir(whole) / "checkpoint_final.pt", fold_dir(chunks) / "checkpoint_final.pt"), 0.0);
}

TEST(DistributedTraining, RankZerosTimeBudgetEndsEveryRankCleanly) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  const std::string arguments = std::regex_replace(train_arguments(data, data.work, "--skip-final-validation --time-budget-min 0.1 --nproc-per-node 2"),
                                                   std::regex("--epochs 2 --iters-per-epoch 3"), "--epochs 1000 --iters-per-epoch 20");
  const auto result = mlseg::testing::run_mlseg(arguments);
  ASSERT_EQ(result.exit_code, 0) << result.output;  // both ranks stopped at the same step
  EXPECT_NE(result.output.find("(stopped: time budget)"), std::string::npos) << result.output;
  EXPECT_TRUE(fs::exists(fold_dir(data.work) / "checkpoint_final.pt"));
}

TEST(DistributedTraining, TheLocalLauncherNamesAKilledRankAndExitsNonZero) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  const std::string long_run = std::regex_replace(train_arguments(data, data.work, "-q --skip-final-validation --dist-timeout-s 60"),
                                                  std::regex("--epochs 2 --iters-per-epoch 3"), "--epochs 1000 --iters-per-epoch 50");
  const fs::path script = dir.path() / "launcher.sh";
  std::ofstream(script) << MLSEG_EXECUTABLE << " " << long_run << " --nproc-per-node 2 > " << (dir.path() / "out.txt").string()
                        << " 2>&1 & launcher=$!\n"
                        << "for i in $(seq 1 200); do [ -s " << (fold_dir(data.work) / "log.jsonl").string() << " ] && break; sleep 0.1; done\n"
                        // rank 1: the launcher's child whose environment says RANK=1
                        << "for d in /proc/[0-9]*; do\n"
                        << "  [ \"$(awk '/^PPid:/{print $2}' $d/status 2>/dev/null)\" = \"$launcher\" ] || continue\n"
                        << "  tr '\\0' '\\n' < $d/environ 2>/dev/null | grep -qx RANK=1 && kill -9 ${d#/proc/}\n"
                        << "done\n"
                        << "wait $launcher; echo \"launcher_exit=$?\"; cat " << (dir.path() / "out.txt").string() << "\n";
  const auto result = mlseg::testing::run_executable("/bin/bash", script.string());
  std::smatch match;
  ASSERT_TRUE(std::regex_search(result.output, match, std::regex("launcher_exit=(\\d+)"))) << result.output;
  EXPECT_EQ(std::stoi(match[1]), 128 + 9) << result.output;
  EXPECT_TRUE(std::regex_search(result.output, std::regex("mlseg: rank 1 \\(pid \\d+\\) was killed by signal 9"))) << result.output;
}

TEST(DistributedTraining, KillingOneRankStopsTheOtherWithinTheTimeoutNamingIt) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  const std::string arguments = std::regex_replace(train_arguments(data, data.work, "-q --skip-final-validation --dist-timeout-s 60"),
                                                   std::regex("--epochs 2 --iters-per-epoch 3"), "--epochs 1000 --iters-per-epoch 50");
  const std::string output = two_ranks_then(dir.path(), fold_dir(data.work), arguments, "kill -9 $p1");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(output, match, std::regex("rank0_exit=(\\d+) seconds=([0-9.]+)"))) << output;
  EXPECT_NE(std::stoi(match[1]), 0) << output;
  EXPECT_LT(std::stod(match[2]), 60.0) << output;  // at once in practice: the killed rank's sockets close
  EXPECT_NE(output.find("mlseg (rank 0 of 2): error: rank 0 of 2: the process group failed during"), std::string::npos) << output;
  EXPECT_TRUE(std::regex_search(output, std::regex("rank 1 \\(pid \\d+\\) is gone"))) << output;
  EXPECT_NE(output.find("--resume"), std::string::npos) << output;
}

TEST(DistributedTraining, AHungRankMakesTheOtherFailAfterTheTimeout) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  const std::string arguments = std::regex_replace(train_arguments(data, data.work, "-q --skip-final-validation --dist-timeout-s 5"),
                                                   std::regex("--epochs 2 --iters-per-epoch 3"), "--epochs 1000 --iters-per-epoch 50");
  // SIGSTOP: rank 1 neither answers nor closes its sockets; only the timeout can end rank 0's wait.
  const std::string output = two_ranks_then(dir.path(), fold_dir(data.work), arguments, "kill -STOP $p1");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(output, match, std::regex("rank0_exit=(\\d+) seconds=([0-9.]+)"))) << output;
  EXPECT_NE(std::stoi(match[1]), 0) << output;
  EXPECT_LT(std::stod(match[2]), 30.0) << output;
  EXPECT_NE(output.find("the process group failed during"), std::string::npos) << output;
}

TEST(DistributedTraining, ResumeAfterAKilledRankFinishesLikeAnUninterruptedRun) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  const fs::path whole = dir.path() / "whole";
  fs::copy(data.work, whole, fs::copy_options::recursive);
  auto arguments = [&](const fs::path& work, const std::string& extra) {
    return std::regex_replace(train_arguments(data, work, "-q --skip-final-validation --checkpoint-every 1 " + extra),
                              std::regex("--epochs 2 --iters-per-epoch 3"), "--epochs 5 --iters-per-epoch 40");
  };
  ASSERT_EQ(mlseg::testing::run_mlseg(arguments(whole, "--nproc-per-node 2")).exit_code, 0);
  const std::string killed = two_ranks_then(dir.path(), fold_dir(data.work), arguments(data.work, ""), "kill -9 $p1");
  ASSERT_NE(killed.find("rank0_exit=2"), std::string::npos) << killed;
  const auto resumed = mlseg::testing::run_mlseg(arguments(data.work, "--resume --nproc-per-node 2"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  std::ifstream log(fold_dir(data.work) / "log.jsonl");
  EXPECT_EQ(std::count(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>(), '\n'), 5);
  EXPECT_EQ(mlseg::testing::max_parameter_difference(fold_dir(whole) / "checkpoint_final.pt", fold_dir(data.work) / "checkpoint_final.pt"), 0.0);
}

TEST(DistributedPrediction, TwoRanksWriteEveryCaseExactlyOnce) {
  mlseg::testing::TempDir dir;
  const auto data = make_dataset(dir.path());
  ASSERT_EQ(mlseg::testing::run_mlseg(train_arguments(data, data.work, "-q --skip-final-validation")).exit_code, 0);
  const fs::path model = data.dataset_work / "results/3d_fullres";
  const fs::path out_one = dir.path() / "pred_one", out_two = dir.path() / "pred_two";
  const std::string predict = "predict -i " + (data.raw / "imagesTr").string() + " -m " + model.string() + " --disable-tta ";
  ASSERT_EQ(mlseg::testing::run_mlseg(predict + "-o " + out_one.string()).exit_code, 0);
  const auto ranks = mlseg::testing::run_mlseg(predict + "-o " + out_two.string() + " --nproc-per-node 2");
  ASSERT_EQ(ranks.exit_code, 0) << ranks.output;
  EXPECT_NE(ranks.output.find("all 2 ranks: 8 predicted, 0 skipped, 0 failed"), std::string::npos) << ranks.output;
  std::set<std::string> one, two;
  for (const auto& e : fs::directory_iterator(out_one)) one.insert(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(out_two)) two.insert(e.path().filename().string());
  EXPECT_EQ(two, one);
  EXPECT_EQ(one.size(), 10u);  // 8 cases + dataset.json + prediction.json
  for (const std::string& name : one) {
    if (name == "dataset.json") continue;
    EXPECT_EQ(read_text(out_one / name), read_text(out_two / name)) << name;
  }
}

}  // namespace
