// The label encodings and the rare-channel remedies end to end on tiny phantoms: powerset trains,
// predicts and exports the same codes in every lossless format; remedies are on by default and
// off under --nnunet-defaults; final validation scores the network's per-channel prediction,
// never a label map that collapsed overlapping regions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "mlseg/evaluation/evaluate.h"
#include "mlseg/evaluation/final_validation.h"
#include "mlseg/inference/predict.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/metrics/case_metrics.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/planning/planner.h"
#include "mlseg/training/train_log.h"
#include "mlseg/training/trainer.h"
#include "training_test_support.h"

namespace mlseg {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

TrainOptions tiny_options(const mlseg::testing::TinyTrainingDataset& data, std::int64_t epochs) {
  TrainOptions options;
  options.work_dir = data.work.string();
  options.epochs = epochs;
  options.iterations_per_epoch = 2;
  options.val_iterations = 1;
  options.threads = 1;
  options.loader_workers = 1;
  options.show_progress = false;
  return options;
}

TEST(PowersetEncoding, TrainsTwoEpochsThenPredictsTheSameCodesInEveryFormat) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 6, PhantomLabelFormat::bitmask);
  mlseg::testing::replan_tiny_dataset(data, "powerset");
  const Json plans = read_json_file(data.dataset_work / "plans.json");
  ASSERT_EQ(plans["label_encoding"], "powerset");
  const auto classes = plans["powerset_combinations"].size();
  ASSERT_GE(classes, 4u) << plans["powerset_combinations"].dump();

  const TrainResult result = train(data.raw, tiny_options(data, 2));
  EXPECT_EQ(result.encoding, "powerset");
  EXPECT_EQ(result.epochs_completed, 2);
  const Json model = read_checkpoint_metadata(result.fold_dir / "checkpoint_final.pt")["model"];
  EXPECT_EQ(model["label_encoding"], "powerset");
  EXPECT_EQ(model["num_outputs"].get<std::size_t>(), classes);
  EXPECT_EQ(model["powerset_combinations"], plans["powerset_combinations"]);
  const Json store = read_json_file(data.dataset_work / "preprocessed" / "3d_fullres" / "store.json");
  EXPECT_EQ(store["label_encoding"], "powerset") << "train re-preprocesses a store of another encoding";

  // Predict the test case in each lossless format; every pair of exports holds the same codes.
  const fs::path model_dir = result.fold_dir.parent_path();
  std::vector<std::pair<PredictionFormat, fs::path>> outputs;
  for (PredictionFormat format : {PredictionFormat::bitmask, PredictionFormat::multihot4d, PredictionFormat::per_channel}) {
    PredictFolderOptions predict;
    predict.folds = {"0"};
    predict.format = format;
    predict.threads = 1;
    predict.show_progress = false;
    predict.predict.use_mirroring = false;
    const fs::path out = dir.path() / ("pred_" + to_string(format));
    const PredictRun run = predict_folder(data.raw / "imagesTs", out, model_dir, predict);
    ASSERT_TRUE(run.ok()) << run.failures.front().message;
    ASSERT_EQ(run.predicted, 1);
    outputs.emplace_back(format, out);
  }
  std::int64_t foreground = 0;
  for (std::size_t i = 1; i < outputs.size(); ++i) {
    EvaluateOptions evaluate;
    evaluate.dataset_json = outputs[0].second / "dataset.json";
    evaluate.prediction_dataset_json = outputs[i].second / "dataset.json";
    evaluate.metrics = "dice";
    evaluate.show_progress = false;
    const EvaluationResult same = evaluate_folders(outputs[0].second, outputs[i].second, evaluate);
    ASSERT_EQ(same.cases.size(), 1u);
    for (const ChannelCaseMetrics& channel : same.cases[0].channels) {
      EXPECT_EQ(channel.counts.fp, 0) << to_string(outputs[i].first) << " channel " << channel.channel;
      EXPECT_EQ(channel.counts.fn, 0) << to_string(outputs[i].first) << " channel " << channel.channel;
      foreground += channel.counts.tp;
    }
  }
  EXPECT_GT(foreground, 0) << "the comparison must see predicted foreground";
}

TEST(Remedies, OnByDefaultAndOffUnderNnunetDefaults) {
  mlseg::testing::TempDir dir;
  // The phantom's "rare" channel is in 2 of 8 cases: analyze finds imbalance.
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 6, PhantomLabelFormat::bitmask);
  const Json plans = read_json_file(data.dataset_work / "plans.json");
  ASSERT_EQ(plans["remedies"]["sampling"], "inverse_frequency") << plans["remedies"].dump();

  TrainOptions defaults = tiny_options(data, 1);
  const TrainResult remedied = train(data.raw, defaults);
  EXPECT_TRUE(remedied.remedies.sample_channels_by_weight);
  ASSERT_TRUE(remedied.remedies.any());
  EXPECT_NE(remedied.remedies.active.front().find("sampling by weight"), std::string::npos);
  if (plans["label_encoding"] == "sigmoid") EXPECT_FALSE(remedied.remedies.bce_pos_weight.empty());
  const auto logged = read_epoch_records(remedied.fold_dir / "log.jsonl");
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0].remedies, remedied.remedies.active);

  TrainOptions nnunet = tiny_options(data, 1);
  nnunet.overwrite = true;
  nnunet.remedies.nnunet_defaults = true;
  const TrainResult plain = train(data.raw, nnunet);
  EXPECT_FALSE(plain.remedies.any());
  EXPECT_FALSE(plain.remedies.sample_channels_by_weight);
  EXPECT_TRUE(plain.remedies.bce_pos_weight.empty());
  EXPECT_TRUE(plain.remedies.loss_channel_weights.empty());
  EXPECT_NE(plain.remedies.inactive_reason.find("--nnunet-defaults"), std::string::npos);
  EXPECT_TRUE(read_epoch_records(plain.fold_dir / "log.jsonl").at(0).remedies.empty());

  // An edited plans.json is respected: sampling off, pos_weight off, a loss weight on.
  Json edited = plans;
  edited["remedies"]["sampling"] = "uniform";
  edited["remedies"]["bce_pos_weight"] = false;
  edited["loss_channel_weights"]["organ"] = 2.0;
  write_json_file(data.dataset_work / "plans.json", edited);
  TrainOptions again = tiny_options(data, 1);
  again.overwrite = true;
  const TrainResult user = train(data.raw, again);
  EXPECT_FALSE(user.remedies.sample_channels_by_weight);
  EXPECT_TRUE(user.remedies.bce_pos_weight.empty());
  ASSERT_EQ(user.remedies.loss_channel_weights.size(), 6u);
  EXPECT_EQ(user.remedies.loss_channel_weights[1], 2.0);
}

TEST(FinalValidation, OverlappingRegionsAreScoredPerChannelNotAsTheCollapsedLabelMap) {
  mlseg::testing::TempDir dir;
  // nnU-Net regions from the phantom: vessel overlaps organ and body without nesting.
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 6, PhantomLabelFormat::regions);
  mlseg::testing::replan_tiny_dataset(data, "sigmoid");
  const TrainResult result = train(data.raw, tiny_options(data, 1));
  const std::vector<std::string> cases = fold_validation_cases(data.dataset_work, "0");
  FinalValidationOptions options;
  options.threads = 1;
  options.show_progress = false;
  options.predict.use_mirroring = false;
  options.metrics = "dice";
  const FinalValidation validation = run_final_validation(data.raw, result.fold_dir, cases, options);
  // The files are the dataset's label maps; the score is of the lossless per-channel copy.
  EXPECT_EQ(validation.prediction.format, "labelmap");
  EXPECT_EQ(validation.scored_folder, validation.folder / "per_channel_codes");
  ASSERT_GT(validation.prediction.voxels_lost_overlap, 0) << "the collapse must lose something for this test to mean anything";

  // The scores equal the Dice of the network's own per-channel prediction, case by case.
  const Dataset dataset = load_dataset(data.raw);
  std::vector<LoadedCheckpoint> models{load_checkpoint(result.fold_dir / "checkpoint_final.pt")};
  PredictOptions predict;
  predict.use_mirroring = false;
  predict.threads = 1;
  ASSERT_EQ(validation.evaluation.cases.size(), cases.size());
  for (const CaseEvaluation& scored : validation.evaluation.cases) {
    const auto files = std::find_if(dataset.training.begin(), dataset.training.end(),
                                    [&](const CaseFiles& f) { return f.case_id == scored.case_id; });
    ASSERT_NE(files, dataset.training.end());
    const PredictedCase predicted = predict_case(models, read_case_images(dataset, *files), predict, scored.case_id);
    const CaseLabels reference = read_case_labels(dataset, *files);
    std::vector<int> channels{0, 1, 2, 3, 4, 5};
    const auto direct = case_metrics(predicted.code.view(), reference.code.view(), reference.geometry.spacing_zyx_mm, channels);
    for (std::size_t c = 0; c < channels.size(); ++c) {
      EXPECT_EQ(scored.channels[c].counts.tp, direct[c].counts.tp) << scored.case_id << " channel " << c;
      EXPECT_EQ(scored.channels[c].counts.fp, direct[c].counts.fp) << scored.case_id << " channel " << c;
      EXPECT_EQ(scored.channels[c].counts.fn, direct[c].counts.fn) << scored.case_id << " channel " << c;
    }
  }
}

}  // namespace
}  // namespace mlseg
