#include "mlseg/report/html_report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/png_decode.h"
#include "mlseg/core/error.h"
#include "mlseg/report/report_sections.h"
#include "mlseg/report/run_layout.h"
#include "mlseg/report/training_log.h"
#include "report/report_test_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

std::string read_file(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream bytes;
  bytes << stream.rdbuf();
  return bytes.str();
}

// The PNGs embedded as data URIs, decoded.
std::vector<testing::DecodedPng> embedded_pngs(const std::string& html) {
  std::vector<testing::DecodedPng> images;
  const std::string prefix = "src=\"data:image/png;base64,";
  for (auto at = html.find(prefix); at != std::string::npos; at = html.find(prefix, at + 1)) {
    const auto start = at + prefix.size();
    images.push_back(testing::decode_png(testing::base64_decode(html.substr(start, html.find('"', start) - start))));
  }
  return images;
}

class ReportFromRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { html_ = new std::string(build_report(testing::synthetic_run().dataset_work)); }
  static void TearDownTestSuite() {
    delete html_;
    html_ = nullptr;
  }
  static std::string* html_;
};
std::string* ReportFromRun::html_ = nullptr;

TEST_F(ReportFromRun, HasEverySectionAndIsSelfContained) {
  const std::string& html = *html_;
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* section : {"id=\"dataset\"", "id=\"labels\"", "id=\"folds\"", "id=\"training\"", "id=\"final-validation\"",
                              "id=\"evaluation\"", "id=\"slices\""}) {
    EXPECT_TRUE(contains(html, section)) << section;
  }
  for (const char* heading : {"Dataset summary", "Label statistics", "Fold coverage", "Training curves", "Final validation",
                              "Evaluation summary", "Validation slices"}) {
    EXPECT_TRUE(contains(html, heading)) << heading;
  }
  EXPECT_EQ(testing::self_contained_page_problems(html), "");
}

TEST_F(ReportFromRun, LabelStatisticsShowChannelsCombinationsAndNesting) {
  const std::string& html = *html_;
  for (const char* channel : {">body<", ">organ<", ">lesion<", ">vessel<", ">cyst<", ">rare<"}) {
    EXPECT_TRUE(contains(html, channel)) << channel;
  }
  EXPECT_TRUE(contains(html, "Cases containing each channel"));
  EXPECT_TRUE(contains(html, "voxels (log scale)"));           // the combination histogram
  EXPECT_TRUE(contains(html, "body + organ"));                 // a combination's bar
  EXPECT_TRUE(contains(html, "lies inside column channel"));   // the nesting marker's legend
  EXPECT_TRUE(contains(html, "inside (nested in)"));           // organ inside body, from labels.json
  EXPECT_TRUE(contains(html, "validation cases"));             // fold coverage, from splits_final.json
}

TEST_F(ReportFromRun, TrainingCurvesAndUndefinedValuesWithReasons) {
  const std::string& html = *html_;
  EXPECT_TRUE(contains(html, "Losses (fold 0)"));
  EXPECT_TRUE(contains(html, "Validation Dice per channel (fold 0)"));
  EXPECT_TRUE(contains(html, "learning rate (log scale)"));
  EXPECT_TRUE(contains(html, "Validation coverage: patches containing each channel"));
  EXPECT_TRUE(contains(html, "Training coverage: patches containing each channel"));
  EXPECT_TRUE(contains(html, "n/a (not_validated_this_epoch)"));
  EXPECT_TRUE(contains(html, "n/a (not_computed)"));  // epoch 0's validation loss
  EXPECT_TRUE(contains(html, "rare: n/a (absent_from_validation)"));
  EXPECT_TRUE(contains(html, "1 line(s) of"));  // the line cut off by a crash
  // Fold 1 has no log yet: the section says which command writes it.
  EXPECT_TRUE(contains(html, "No training log"));
  EXPECT_TRUE(contains(html, "mlseg train"));
  EXPECT_TRUE(contains(html, "-f 1"));
}

TEST_F(ReportFromRun, ValidationTablesKeepReasonsAndSlicesAreRealImages) {
  const std::string& html = *html_;
  EXPECT_TRUE(contains(html, "Fold 0: Dice per case and channel"));
  EXPECT_TRUE(contains(html, "n/a (both_empty)"));  // "rare" is in case 0 only: both empty elsewhere
  EXPECT_TRUE(contains(html, "foreground mean Dice"));
  EXPECT_TRUE(contains(html, "No final validation of fold 1"));

  const std::vector<testing::DecodedPng> images = embedded_pngs(html);
  ASSERT_GE(images.size(), 3u);  // at least one case: all channels + per-channel panels
  for (const auto& image : images) {
    ASSERT_TRUE(image.ok) << image.problem;
    EXPECT_GT(image.width, 50);
  }
  // Overlays are coloured: some pixel is not grey.
  const auto& first = images.front();
  bool coloured = false;
  for (std::size_t i = 0; i + 2 < first.pixels.size() && !coloured; i += 3) {
    coloured = first.pixels[i] != first.pixels[i + 1] || first.pixels[i + 1] != first.pixels[i + 2];
  }
  EXPECT_TRUE(coloured);
  EXPECT_TRUE(contains(html, "Outline: reference; translucent fill: prediction."));
}

TEST(Report, MissingInputsSayWhichCommandWritesThem) {
  testing::TempDir dir;
  const fs::path dataset = dir / "Dataset001_Empty";
  fs::create_directories(dataset / "analysis");
  const std::string html = build_report(dataset);
  EXPECT_TRUE(contains(html, "No label statistics")) << html;
  EXPECT_TRUE(contains(html, "mlseg analyze RAW_DATASET --work-dir " + dir.path().string()));
  EXPECT_TRUE(contains(html, "mlseg plan"));
  EXPECT_TRUE(contains(html, "No training results"));
  EXPECT_TRUE(contains(html, "No evaluation summary"));
  EXPECT_TRUE(contains(html, "mlseg find-best-config RAW_DATASET --work-dir"));
  EXPECT_EQ(testing::self_contained_page_problems(html), "");
}

TEST(Report, WritesTheFileAtomically) {
  testing::TempDir dir;
  const fs::path dataset = dir / "Dataset001_Empty";
  fs::create_directories(dataset / "analysis");
  write_report(dataset, dir / "out" / "report.html");
  const std::string html = read_file(dir / "out" / "report.html");
  EXPECT_TRUE(contains(html, "</html>"));
}

TEST(RunLayout, AcceptsTheDatasetWorkFolderResultsConfigAndFold) {
  const auto& run = testing::synthetic_run();
  RunLayout layout = locate_run(run.dataset_work);
  EXPECT_EQ(layout.dataset_name, "Dataset900_Phantom");
  EXPECT_EQ(layout.configuration, "3d_fullres");
  EXPECT_EQ(layout.folds, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(fs::canonical(layout.raw_dataset_dir), fs::canonical(run.raw_dataset));  // from summary.json

  layout = locate_run(run.fold0);
  EXPECT_EQ(fs::canonical(layout.dataset_work_dir), fs::canonical(run.dataset_work));
  EXPECT_EQ(layout.folds, (std::vector<std::string>{"0"}));

  layout = locate_run(run.dataset_work / "results" / "3d_fullres");
  EXPECT_EQ(layout.folds.size(), 2u);

  ReportOptions options;
  options.fold = "1";
  EXPECT_EQ(locate_run(run.dataset_work, options).folds, (std::vector<std::string>{"1"}));
  EXPECT_THROW(locate_run(run.fold0, options), Error);  // fold_0 folder but --fold 1

  // The raw dataset folder, as other commands take it, with --work-dir.
  options = {};
  options.work_dir = run.work_dir.string();
  layout = locate_run(run.raw_dataset, options);
  EXPECT_EQ(fs::canonical(layout.dataset_work_dir), fs::canonical(run.dataset_work));
  EXPECT_EQ(fs::canonical(layout.raw_dataset_dir), fs::canonical(run.raw_dataset));
}

TEST(RunLayout, ErrorsSayWhatToPass) {
  const auto& run = testing::synthetic_run();
  try {
    locate_run(run.root / "no_such_folder");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_TRUE(contains(error.what(), "does not exist"));
    EXPECT_TRUE(contains(error.fix(), "WORK/<dataset>"));
  }
  try {
    locate_run(run.work_dir);  // the work folder itself
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_TRUE(contains(error.fix(), (run.work_dir / "Dataset900_Phantom").string())) << error.what();
  }
}

TEST(TrainingLog, NullsKeepTheirReasonsAndBrokenLinesAreCounted) {
  const TrainingLog log = read_training_log(testing::synthetic_run().fold0 / "log.jsonl");
  ASSERT_EQ(log.epochs.size(), 5u);
  EXPECT_EQ(log.unreadable_lines, 1);
  const EpochLog& first = log.epochs[0];
  EXPECT_FALSE(first.val_loss.value.has_value());
  EXPECT_EQ(first.val_loss.reason, "not_computed");
  EXPECT_FALSE(first.mean_dice.value.has_value());
  EXPECT_EQ(first.mean_dice.reason, "absent_from_validation");
  ASSERT_EQ(first.channels.size(), 6u);
  EXPECT_EQ(first.channels[5].name, "rare");
  EXPECT_EQ(first.channels[5].dice.reason, "absent_from_validation");
  EXPECT_EQ(first.channels[5].patches_with_channel, 0);
  const EpochLog& skipped = log.epochs[2];  // "validation": null
  EXPECT_FALSE(skipped.has_validation);
  EXPECT_EQ(skipped.mean_dice.reason, "not_validated_this_epoch");
  EXPECT_EQ(skipped.val_loss.reason, "not_validated_this_epoch");
  EXPECT_TRUE(skipped.ema_mean_dice.value.has_value());  // the top-level EMA carries on
  EXPECT_EQ(skipped.train_patches, 500);
  ASSERT_EQ(skipped.train_patches_with_channel.size(), 6u);
  EXPECT_EQ(skipped.train_patches_with_channel[0], (std::pair<std::string, std::int64_t>{"body", 480}));
  EXPECT_EQ(skipped.train_patches_with_channel[5].first, "rare");
  EXPECT_NEAR(*log.epochs[4].train_loss.value, 0.45, 1e-9);
  EXPECT_TRUE(log.epochs[4].best);
  EXPECT_EQ(log.epochs[4].mean_over_channels, 5);
}

TEST(ReportBase64, LinesAndNoNanRunDecodeToTheSameBytes) {
  const std::string base64 = std::string(100, 'A') + "nAnNaNxnan" + std::string(100, 'B');
  const std::string embedded = report_detail::embeddable_base64(base64);
  EXPECT_EQ(testing::self_contained_page_problems(embedded), "");
  std::string joined;
  for (const char c : embedded) {
    if (c != '\n') joined += c;
  }
  EXPECT_EQ(joined, base64);
}

TEST(ReportCli, WritesTheReportAndRejectsAMissingFolder) {
  const auto& run = testing::synthetic_run();
  testing::TempDir dir;
  const fs::path output = dir / "report.html";
  const testing::CommandResult ok =
      testing::run_mlseg("report '" + run.fold0.string() + "' -o '" + output.string() + "' --slice-cases 1");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(contains(ok.output, "wrote " + output.string()));
  EXPECT_TRUE(contains(read_file(output), "Fold 0"));

  const testing::CommandResult missing = testing::run_mlseg("report '" + (dir / "nope").string() + "'");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.output, "does not exist")) << missing.output;
  EXPECT_TRUE(contains(missing.output, "WORK/<dataset>")) << missing.output;
}

}  // namespace
}  // namespace mlseg
