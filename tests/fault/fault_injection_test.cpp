// What a kill or a full disk does to mlseg's files (issue #22): `mlseg train` killed with SIGKILL
// during a step, while a checkpoint is written and during validation, then --resume; a truncated
// checkpoint; preprocess and predict killed and rerun; a full disk under training; and one run
// per fold folder. The kills come from MLSEG_FAULT (core/fault_injection.h), so they land at the
// named point every time.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>

#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/nn/checkpoint.h"
#include "run_executable.h"
#include "training/training_test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;

constexpr const char* kEpochs = "--epochs 4 --iters-per-epoch 4 --val-iterations 2 --checkpoint-every 1";

fs::path fold_dir(const fs::path& work) { return work / "Dataset900_Phantom/results/3d_fullres/fold_0"; }

std::string train(const mlseg::testing::TinyTrainingDataset& data, const fs::path& work, const std::string& extra) {
  return "train " + data.raw.string() + " --work-dir " + work.string() + " " + kEpochs +
         " --loader-workers 1 --threads 1 --skip-final-validation " + extra;
}


std::size_t lines_in(const fs::path& file) {
  std::ifstream in(file);
  return static_cast<std::size_t>(std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
}

std::vector<std::string> temporaries_in(const fs::path& folder) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp-") != std::string::npos) found.push_back(name);
  }
  return found;
}

class KilledTraining : public ::testing::TestWithParam<const char*> {};

TEST_P(KilledTraining, ResumeFinishesLikeAnUninterruptedRun) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::bitmask, 8);
  const fs::path whole = dir.path() / "whole";
  fs::copy(data.work, whole, fs::copy_options::recursive);
  ASSERT_EQ(mlseg::testing::run_mlseg(train(data, whole, "-q")).exit_code, 0);

  const auto killed = mlseg::testing::run_executable(
      "/usr/bin/env", std::string("MLSEG_FAULT=") + GetParam() + " " + MLSEG_EXECUTABLE + " " + train(data, data.work, "-q"));
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.output;  // SIGKILL at the fault point
  const std::size_t epochs_before = fs::exists(fold_dir(data.work) / "log.jsonl") ? lines_in(fold_dir(data.work) / "log.jsonl") : 0;
  EXPECT_LT(epochs_before, 4u);

  const auto resumed = mlseg::testing::run_mlseg(train(data, data.work, "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(lines_in(fold_dir(data.work) / "log.jsonl"), 4u);  // every epoch logged once
  EXPECT_TRUE(temporaries_in(fold_dir(data.work)).empty());    // the half-written file is gone
  // The weights equal the uninterrupted run's: at most the killed epoch was lost, and redone.
  EXPECT_EQ(mlseg::testing::max_parameter_difference(fold_dir(whole) / "checkpoint_final.pt", fold_dir(data.work) / "checkpoint_final.pt"), 0.0);
}

// train_step:9 — in epoch 3's first step; checkpoint_write:4 — epoch 2's checkpoint_latest (best
// and latest are written every epoch here); validation:3 — epoch 2's validation.
INSTANTIATE_TEST_SUITE_P(AtEachPoint, KilledTraining, ::testing::Values("train_step:9", "checkpoint_write:4", "validation:3"));

TEST(KilledTrainingFiles, ATruncatedCheckpointIsNamedAndResumeFallsBackToThePreviousOne) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::bitmask, 8);
  const fs::path whole = dir.path() / "whole";
  fs::copy(data.work, whole, fs::copy_options::recursive);
  ASSERT_EQ(mlseg::testing::run_mlseg(train(data, whole, "-q")).exit_code, 0);
  ASSERT_EQ(mlseg::testing::run_mlseg(train(data, data.work, "-q --stop-after-epoch 3")).exit_code, 0);
  const fs::path latest = fold_dir(data.work) / "checkpoint_latest.pt";
  ASSERT_TRUE(fs::exists(previous_checkpoint_path(latest)));
  fs::resize_file(latest, fs::file_size(latest) / 2);  // a full disk or a cut copy

  try {
    load_checkpoint(latest);
    FAIL() << "a truncated checkpoint loaded";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("checkpoint_latest.pt"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("damaged"), std::string::npos) << error.what();
  }
  const auto resumed = mlseg::testing::run_mlseg(train(data, data.work, "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("falling back to"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming fold 0 at epoch 3"), std::string::npos) << resumed.output;  // epoch 2's checkpoint
  EXPECT_EQ(lines_in(fold_dir(data.work) / "log.jsonl"), 4u);
  EXPECT_EQ(mlseg::testing::max_parameter_difference(fold_dir(whole) / "checkpoint_final.pt", fold_dir(data.work) / "checkpoint_final.pt"), 0.0);
}

TEST(KilledTrainingFiles, ASecondRunOnTheSameFoldIsRefusedNamingTheHolderAndAStaleLockIsTakenOver) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::bitmask, 8);
  const fs::path script = dir.path() / "two.sh";
  const std::string long_run = std::regex_replace(train(data, data.work, "-q"), std::regex("--epochs 4"), "--epochs 400");
  std::ofstream(script) << MLSEG_EXECUTABLE << " " << long_run << " > /dev/null 2>&1 & first=$!\n"
                        << "for i in $(seq 1 100); do [ -s " << (fold_dir(data.work) / "log.jsonl").string() << " ] && break; sleep 0.1; done\n"
                        << MLSEG_EXECUTABLE << " " << long_run << " --overwrite; echo \"second_exit=$? first=$first\"\n"
                        << "kill -9 $first; wait $first 2>/dev/null\n";
  const auto result = mlseg::testing::run_executable("/bin/bash", script.string());
  std::smatch match;
  ASSERT_TRUE(std::regex_search(result.output, match, std::regex("second_exit=(\\d+) first=(\\d+)"))) << result.output;
  EXPECT_EQ(match[1], "2") << result.output;
  EXPECT_NE(result.output.find("another run is training Dataset900_Phantom 3d_fullres fold 0 by pid " + match[2].str()),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("started "), std::string::npos) << result.output;
  // The first run was killed holding the lock: the next one takes it over and finishes.
  const auto after = mlseg::testing::run_mlseg(train(data, data.work, "-q --overwrite"));
  EXPECT_EQ(after.exit_code, 0) << after.output;
}

TEST(KilledPreprocessing, ARerunCompletesOnlyTheMissingCases) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::bitmask, 8);
  const std::string preprocess = std::string(MLSEG_EXECUTABLE) + " preprocess " + data.raw.string() + " -c 3d_fullres --work-dir " +
                                 data.work.string() + " --threads 1";
  ASSERT_EQ(mlseg::testing::run_executable("/bin/sh", "-c '" + preprocess + " --overwrite -q'").exit_code, 0);
  const auto killed = mlseg::testing::run_executable("/usr/bin/env", "MLSEG_FAULT=preprocess_case:3 " + preprocess + " --overwrite -q");
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.output;
  const auto rerun = mlseg::testing::run_executable("/bin/sh", "-c '" + preprocess + "'");
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("3 unchanged (skipped)"), std::string::npos) << rerun.output;
  EXPECT_NE(rerun.output.find("5 cases preprocessed"), std::string::npos) << rerun.output;
}

TEST(KilledPrediction, ContinueSkipsTheFinishedCasesAndRedoesTheRest) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::bitmask, 8);
  ASSERT_EQ(mlseg::testing::run_mlseg(train(data, data.work, "-q")).exit_code, 0);
  const fs::path out = dir.path() / "pred";
  const std::string predict = std::string(MLSEG_EXECUTABLE) + " predict -i " + (data.raw / "imagesTr").string() + " -m " +
                              (data.dataset_work / "results/3d_fullres").string() + " -o " + out.string() + " --disable-tta";
  const auto killed = mlseg::testing::run_executable("/usr/bin/env", "MLSEG_FAULT=predict_case:3 " + predict);
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.output;
  std::size_t finished = 0;
  for (const auto& e : fs::directory_iterator(out)) finished += e.path().filename().string().rfind("phantom_", 0) == 0 ? 1 : 0;
  EXPECT_GE(finished, 3u);
  const auto resumed = mlseg::testing::run_executable("/bin/sh", "-c '" + predict + " --continue'");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find(std::to_string(finished) + " already done (--continue)"), std::string::npos) << resumed.output;
  std::size_t outputs = 0;
  for (const auto& e : fs::directory_iterator(out)) outputs += e.path().filename().string().rfind("phantom_", 0) == 0 ? 1 : 0;
  EXPECT_EQ(outputs, 8u);
  EXPECT_TRUE(temporaries_in(out).empty());
}

TEST(FullDisk, TrainingStopsWithAClearErrorAndThePreviousCheckpointIntact) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::bitmask, 8);
  // The fold's results folder on a 400 KB tmpfs: the first epochs' checkpoints fit, later ones do not.
  const fs::path results = data.dataset_work / "results";
  fs::create_directories(results);
  if (geteuid() != 0 || mount("tmpfs", results.c_str(), "tmpfs", 0, "size=400k") != 0) {
    GTEST_SKIP() << "mounting a small tmpfs needs root (CAP_SYS_ADMIN): the full-disk test does not run here";
  }
  struct Unmount {
    fs::path path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{results};
  const auto result = mlseg::testing::run_mlseg(std::regex_replace(train(data, data.work, ""), std::regex("--epochs 4"), "--epochs 40"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(std::regex_search(result.output, std::regex("could not write|disk|space", std::regex::icase))) << result.output;
  EXPECT_NE(result.output.find("fold_0"), std::string::npos) << result.output;  // names the file
  // Every checkpoint in place is whole (its check matches) and the latest one loads.
  const fs::path fold = fold_dir(data.work);
  for (const auto& entry : fs::directory_iterator(fold)) {
    if (entry.path().extension() == ".pt") EXPECT_NO_THROW(verify_checkpoint_file(entry.path())) << entry.path();
  }
  EXPECT_NO_THROW(load_checkpoint(fold / "checkpoint_latest.pt"));
  EXPECT_TRUE(temporaries_in(fold).empty());
}

}  // namespace
