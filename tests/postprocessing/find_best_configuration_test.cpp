// find-best-config (issue #24): two trained configurations of a tiny phantom (3d_fullres trained
// longer, 2d barely), their final validations with probabilities, the pair ensemble; the choice is
// the highest cross-validation foreground Dice, and the written commands run as they are.
#include "mlseg/postprocessing/find_best_configuration.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mlseg/inference/prediction_folder.h"
#include "mlseg/io/json_file.h"
#include "mlseg/report/html_report.h"
#include "test_support.h"
#include "training/training_test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;

std::string train_command(const mlseg::testing::TinyTrainingDataset& data, const std::string& configuration, int epochs) {
  return "train " + data.raw.string() + " -c " + configuration + " -f 0 --epochs " + std::to_string(epochs) +
         " --iters-per-epoch 3 --val-iterations 1 --loader-workers 1 --threads 1 --work-dir " + data.work.string() +
         " --save-probabilities -q";
}

TEST(FindBestConfig, PicksTheBetterConfigurationOrEnsembleAndItsCommandsRun) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 3, PhantomLabelFormat::bitmask, 8);
  {
    auto plans = read_json_file(data.dataset_work / "plans.json");
    ASSERT_TRUE(plans["configurations"].contains("2d"));
    plans["configurations"]["2d"]["batch_size"] = 2;
    write_json_file(data.dataset_work / "plans.json", plans);
  }
  const auto full = mlseg::testing::run_mlseg(train_command(data, "3d_fullres", 6));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const auto flat = mlseg::testing::run_mlseg(train_command(data, "2d", 1));
  ASSERT_EQ(flat.exit_code, 0) << flat.output;

  FindBestConfigOptions options;
  options.work_dir = data.work.string();
  options.threads = 1;
  options.show_progress = false;
  const ModelSelection selection = find_best_configuration(data.raw, options);
  std::cout << format_model_selection(selection);
  ASSERT_EQ(selection.candidates.size(), 3u);
  EXPECT_EQ(selection.candidates[0].name, "2d");
  EXPECT_EQ(selection.candidates[1].name, "3d_fullres");
  EXPECT_EQ(selection.candidates[2].name, "ensemble 2d + 3d_fullres");
  EXPECT_EQ(selection.folds, std::vector<std::string>{"0"});
  for (const auto& candidate : selection.candidates) {
    SCOPED_TRACE(candidate.name);
    EXPECT_TRUE(candidate.has_probabilities || candidate.members.size() == 2);
    EXPECT_GT(candidate.score.cases, 0);
    ASSERT_TRUE(candidate.score.foreground.defined());
    EXPECT_LE(candidate.score.foreground.value(), selection.candidates[selection.best].score.foreground.value());
  }
  EXPECT_GT(selection.candidates[1].score.foreground.value(), selection.candidates[0].score.foreground.value())
      << "6 epochs of 3d_fullres against 1 of 2d";
  EXPECT_NE(selection.best, 0u) << "the barely trained 2d is not the best";

  // The files: scores, the choice and the postprocessing, and the commands.
  const auto info = read_json_file(selection.output_dir / kInferenceInformationFile);
  EXPECT_EQ(info["best"]["name"], selection.candidates[selection.best].name);
  EXPECT_EQ(info["candidates"].size(), 3u);
  EXPECT_TRUE(fs::is_regular_file(selection.output_dir / kPostprocessingFileName));
  // The report's model selection section shows the table, the choice and the postprocessing.
  const std::string html = build_report(data.dataset_work);
  EXPECT_NE(html.find("id=\"model-selection\""), std::string::npos);
  EXPECT_NE(html.find(selection.candidates[selection.best].name + " (best)"), std::string::npos);
  EXPECT_NE(html.find("ensemble 2d + 3d_fullres"), std::string::npos);
  EXPECT_NE(html.find("keep the largest foreground component"), std::string::npos);
  EXPECT_EQ(html.find("nan"), std::string::npos);

  std::ifstream text(selection.output_dir / kInferenceInstructionsFile);
  std::string line, last_output;
  int commands = 0;
  const fs::path outputs = dir.path() / "deploy";
  while (std::getline(text, line)) {
    if (line.rfind("mlseg ", 0) != 0) continue;
    std::istringstream words(line.substr(6));
    std::string word, arguments;
    for (bool output_next = false; words >> word;) {
      if (word == "INPUT_FOLDER") word = (data.raw / "imagesTs").string();
      if (word.rfind("OUTPUT_FOLDER", 0) == 0) word = (outputs / word).string();
      if (output_next) last_output = word;
      output_next = word == "-o";
      arguments += word + " ";
    }
    const auto run = mlseg::testing::run_mlseg(arguments + "--threads 1 -q");
    ASSERT_EQ(run.exit_code, 0) << line << "\n" << run.output;
    ++commands;
  }
  EXPECT_GE(commands, 1);
  ASSERT_EQ(last_output, (outputs / "OUTPUT_FOLDER").string());
  const PredictionFolderInfo deployed = read_prediction_folder(last_output);
  EXPECT_EQ(list_prediction_cases(deployed).size(), 1u) << "the phantom's one test case";
}

}  // namespace
