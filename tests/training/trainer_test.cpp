// mlseg train end to end on a tiny phantom: the seed scenario (10 bit-encoded channels with rare
// ones), --resume, --time-budget-min, and non-finite steps that never reach the weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include "mlseg/analysis/splits.h"
#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/data/batch_loader.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/io/json_file.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/training/train_log.h"
#include "mlseg/training/trainer.h"
#include "training_test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

/// The first fold whose validation cases lack some channel present in the dataset (or fold 0).
int fold_with_absent_channel(const mlseg::testing::TinyTrainingDataset& data, std::string* absent) {
  const PreprocessedStore store(data.dataset_work / "preprocessed/3d_fullres");
  const auto folds = folds_from_json(read_json_file(data.dataset_work / "splits_final.json"), "splits");
  for (std::size_t k = 0; k < folds.size(); ++k) {
    std::vector<std::int64_t> in_val(static_cast<std::size_t>(store.num_channels()), 0);
    for (const auto& id : folds[k].val) {
      const auto& voxels = store.stored_case(store.case_index(id)).properties().channel_voxels;
      for (int c = 0; c < store.num_channels(); ++c) in_val[c] += voxels[c] > 0 ? 1 : 0;
    }
    for (int c = 0; c < store.num_channels(); ++c) {
      if (in_val[c] == 0) {
        *absent = store.info().channel_names[c];
        return static_cast<int>(k);
      }
    }
  }
  return 0;
}

TEST(Trainer, SeedScenarioTenBitmaskChannelsHasNoNaNAndNamesAbsentChannels) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 10, PhantomLabelFormat::bitmask);
  std::string absent;
  const int fold = fold_with_absent_channel(data, &absent);
  ASSERT_FALSE(absent.empty()) << "the seed scenario needs a fold whose validation cases lack a channel";
  const std::string command = "train " + data.raw.string() + " --work-dir " + data.work.string() + " -f " +
                              std::to_string(fold) + " --epochs 4 --iters-per-epoch 4 --val-iterations 50 --threads 1 " +
                              "--loader-workers 1";
  const auto result = mlseg::testing::run_mlseg(command);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(lower(result.output).find("nan"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("Validation coverage"), std::string::npos);
  if (!absent.empty()) {
    EXPECT_NE(result.output.find("CHANNEL \"" + absent + "\" IS ABSENT"), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(absent + " n/a (absent_from_validation)"), std::string::npos) << result.output;
  }

  const fs::path fold_dir = data.dataset_work / "results/3d_fullres" / ("fold_" + std::to_string(fold));
  for (const char* file : {"checkpoint_final.pt", "checkpoint_latest.pt", "log.jsonl", "progress.svg"}) {
    EXPECT_TRUE(fs::exists(fold_dir / file)) << file;
  }
  const std::string log = read_text(fold_dir / "log.jsonl");
  EXPECT_EQ(lower(log).find("nan"), std::string::npos);
  EXPECT_EQ(lower(read_text(fold_dir / "progress.svg")).find(">nan"), std::string::npos);
  const std::vector<EpochRecord> records = read_epoch_records(fold_dir / "log.jsonl");
  ASSERT_EQ(records.size(), 4u);
  std::int64_t last_best = -1, bests = 0;
  for (const EpochRecord& r : records) {
    ASSERT_TRUE(r.validation.has_value());
    const ValidationResult& v = *r.validation;
    EXPECT_EQ(v.patches, 100);
    for (std::size_t c = 0; c < v.channel_names.size(); ++c) {
      if (v.channel_names[c] == absent) {
        ASSERT_FALSE(v.dice[c].defined());
        EXPECT_EQ(v.dice[c].reason(), UndefinedReason::absent_from_validation);
        EXPECT_EQ(v.patches_with_channel[c], 0);
      } else {
        // The stratified set covers every channel present in the validation cases.
        EXPECT_GE(v.patches_with_channel[c], kDefaultMinPatchesPerChannel) << v.channel_names[c];
        EXPECT_TRUE(v.dice[c].defined()) << v.channel_names[c] << " is present in the validation cases but has no Dice";
      }
    }
    if (r.best) {
      last_best = r.epoch;
      ++bests;
    }
  }
  // Training on a fixed set improves the EMA: the best checkpoint moves with it.
  EXPECT_GE(bests, 2) << log;
  if (bests > 0) {
    ASSERT_TRUE(fs::exists(fold_dir / "checkpoint_best.pt"));
    EXPECT_EQ(read_checkpoint_metadata(fold_dir / "checkpoint_best.pt")["training"]["best_epoch"], last_best);
  }
  // The same run again refuses to overwrite it.
  const auto again = mlseg::testing::run_mlseg(command);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
}

TrainOptions quick_options(const mlseg::testing::TinyTrainingDataset& data) {
  TrainOptions options;
  options.work_dir = data.work.string();
  options.epochs = 3;
  options.iterations_per_epoch = 2;
  options.val_iterations = 2;
  options.threads = 1;
  options.loader_workers = 1;
  options.checkpoint_every = 1;
  options.show_progress = false;
  return options;
}

TEST(Trainer, ResumeContinuesExactlyLikeAnUninterruptedRun) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::regions, 6);
  TrainOptions full = quick_options(data);
  full.fold = "all";
  train(data.raw, full);
  const fs::path fold_dir = data.dataset_work / "results/3d_fullres/fold_all";
  const LoadedCheckpoint uninterrupted = load_checkpoint(fold_dir / "checkpoint_final.pt");

  // Two epochs, then a resumed run for the third: the same weights and the same log.
  TrainOptions chunk = full;
  chunk.overwrite = true;
  chunk.stop_after_epoch = 2;
  const TrainResult stopped = train(data.raw, chunk);
  EXPECT_EQ(stopped.epochs_completed, 2);
  EXPECT_FALSE(fs::exists(fold_dir / "checkpoint_final.pt"));
  TrainOptions rest = full;
  rest.resume = true;
  const TrainResult resumed = train(data.raw, rest);
  EXPECT_EQ(resumed.epochs_completed, 3);
  const LoadedCheckpoint continued = load_checkpoint(fold_dir / "checkpoint_final.pt");
  auto expected = uninterrupted.network->module().named_parameters();
  for (const auto& item : continued.network->module().named_parameters()) {
    EXPECT_TRUE(torch::allclose(item.value(), expected[item.key()], 0, 1e-6)) << item.key();
  }
  const auto records = read_epoch_records(fold_dir / "log.jsonl");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].epoch, 2);
}

TEST(Trainer, TimeBudgetEndsCleanlyWithFinalCheckpointAndValidation) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::regions, 6);
  TrainOptions options = quick_options(data);
  options.epochs = 100000;
  options.iterations_per_epoch = 1000;
  options.time_budget_minutes = 0.05;  // 3 s
  const TrainResult result = train(data.raw, options);
  EXPECT_EQ(result.stop_reason, "time budget");
  EXPECT_LT(result.seconds, 30.0);
  ASSERT_TRUE(result.final_validation.has_value());
  const fs::path fold_dir = data.dataset_work / "results/3d_fullres/fold_0";
  EXPECT_TRUE(fs::exists(fold_dir / "checkpoint_final.pt"));
  const auto records = read_epoch_records(fold_dir / "log.jsonl");
  ASSERT_FALSE(records.empty());
  EXPECT_TRUE(records.back().validation.has_value());
  EXPECT_LT(records.back().iterations, 1000);
}

TEST(Trainer, WholeCaseValidationModes) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::regions, 6);
  const auto folds = folds_from_json(read_json_file(data.dataset_work / "splits_final.json"), "splits");
  TrainOptions options = quick_options(data);
  options.epochs = 1;
  options.val_mode = ValidationMode::both;
  train(data.raw, options);
  const fs::path log = data.dataset_work / "results/3d_fullres/fold_0/log.jsonl";
  auto records = read_epoch_records(log);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_TRUE(records[0].validation && records[0].full_validation);
  EXPECT_EQ(records[0].validation->kind, "patches");
  EXPECT_EQ(records[0].full_validation->kind, "full_cases");
  EXPECT_EQ(records[0].full_validation->patches, static_cast<std::int64_t>(folds[0].val.size()));
  // Whole cases see every voxel: "body" (in every case) has reference voxels.
  EXPECT_GT(records[0].full_validation->counts[0].tp + records[0].full_validation->counts[0].fn, 0);
  options.val_mode = ValidationMode::full;
  options.overwrite = true;
  train(data.raw, options);
  records = read_epoch_records(log);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_TRUE(records[0].validation.has_value());
  EXPECT_EQ(records[0].validation->kind, "full_cases");
  EXPECT_FALSE(records[0].full_validation.has_value());
  EXPECT_TRUE(records[0].ema_mean_dice.has_value());
}

/// Overwrites every stored image with NaN (as a corrupted store would hold).
void poison_store_images(const fs::path& store_dir) {
  for (const auto& entry : fs::directory_iterator(store_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 8 || name.substr(name.size() - 8) != "_img.npy") continue;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    unsigned char head[10];
    file.read(reinterpret_cast<char*>(head), 10);
    const std::size_t data_offset = 10 + (head[8] | (head[9] << 8));
    const std::size_t bytes = fs::file_size(entry.path()) - data_offset;
    const std::vector<float> nan(bytes / 4, std::numeric_limits<float>::quiet_NaN());
    file.seekp(static_cast<std::streamoff>(data_offset));
    file.write(reinterpret_cast<const char*>(nan.data()), static_cast<std::streamsize>(bytes));
  }
}

TEST(Trainer, NonFiniteStepsNeverReachTheWeights) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::regions, 6);
  poison_store_images(data.dataset_work / "preprocessed/3d_fullres");
  TrainOptions options = quick_options(data);
  options.epochs = 50;
  options.iterations_per_epoch = 10;
  options.max_nonfinite_in_a_row = 3;
  try {
    train(data.raw, options);
    FAIL() << "training on NaN images should have stopped";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
    EXPECT_NE(e.fix().find("mlseg verify"), std::string::npos);
  }
  // Every step had a NaN loss: none was applied, so the weights are the finite initial ones.
  const LoadedCheckpoint latest = load_checkpoint(data.dataset_work / "results/3d_fullres/fold_0/checkpoint_latest.pt");
  EXPECT_EQ(latest.metadata["training"]["skipped_steps"].get<int>(), 3);
  for (const auto& p : latest.network->module().parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(Trainer, LoaderWorkersAutoIsCoresMinusOne) {
  EXPECT_EQ(TrainOptions().loader_workers, kLoaderWorkersAuto);
  EXPECT_EQ(parse_loader_workers("auto"), kLoaderWorkersAuto);
  EXPECT_EQ(parse_loader_workers("3"), 3);
  for (const char* bad : {"0", "-1", "2x", "", "many", " 2", "99999"}) EXPECT_THROW(parse_loader_workers(bad), Error) << bad;
  EXPECT_EQ(default_loader_workers(), std::max(1, default_thread_count() - 1));
}

TEST(Trainer, AWrongDeviceFailsBeforeAnyWork) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 2, PhantomLabelFormat::regions, 6);
  TrainOptions options = quick_options(data);
  options.device = "gpu";
  try {
    train(data.raw, options);
    ADD_FAILURE() << "--device gpu was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.problem().find("unknown --device 'gpu'"), std::string::npos) << e.problem();
  }
  EXPECT_FALSE(fs::exists(data.dataset_work / "results")) << "nothing is written before the device is known";
}

}  // namespace
