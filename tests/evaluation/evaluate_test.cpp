// evaluate on phantom folders (identical, empty, missing, mis-registered predictions; CLI) and on
// real BraTS-Toolkit predictions (five algorithms against each other, empty ET in TCGA-DU-7294).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "mlseg/core/error.h"
#include "mlseg/evaluation/evaluate.h"
#include "mlseg/evaluation/evaluation_report.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/json_file.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A 3-case phantom (body ⊃ organ ⊃ lesion as nnU-Net regions) and a prediction folder copied from
// its labels, with case 1 replaced by an empty label map.
struct PhantomFolders {
  TempDir temp;
  fs::path dataset = temp / "Dataset900_Phantom";
  fs::path pred = temp / "pred";
  PhantomFolders() {
    PhantomOptions options;
    options.num_cases = 3;
    options.shape_zyx = {10, 14, 14};
    options.num_channels = 3;
    options.show_progress = false;
    options.threads = 1;
    write_phantom_dataset(dataset, options);
    fs::create_directories(pred);
    for (const auto& entry : fs::directory_iterator(dataset / "labelsTr")) {
      fs::copy_file(entry.path(), pred / entry.path().filename());
    }
    Image empty = read_label_image(pred / "phantom_0001.nii.gz");
    empty.data.zero_();
    write_image(empty, pred / "phantom_0001.nii.gz");
  }
};

EvaluateOptions quiet_options() {
  EvaluateOptions options;
  options.show_progress = false;
  options.threads = 2;
  return options;
}

TEST(EvaluateFolders, IdenticalAndEmptyPredictions) {
  PhantomFolders folders;
  ASSERT_TRUE(fs::exists(folders.dataset / "labelsTr" / "phantom_0001.nii.gz"));
  const EvaluationResult result = evaluate_folders(folders.dataset, folders.pred, quiet_options());
  ASSERT_EQ(result.cases.size(), 3u);
  ASSERT_EQ(result.channels.size(), 3u);
  EXPECT_EQ(result.channels[0].name, "body");
  ASSERT_TRUE(result.channels[0].nnunet_key.has_value());
  EXPECT_EQ(result.channels[0].nnunet_key->front(), '(');  // a region: str(tuple)
  const auto& body0 = result.cases[0].channels[0];
  EXPECT_EQ(body0.values.at(Metric::dice).value(), 1.0);
  EXPECT_EQ(body0.values.at(Metric::hd95).value(), 0.0);
  EXPECT_EQ(body0.counts.fp + body0.counts.fn, 0);
  const auto& body1 = result.cases[1].channels[0];
  EXPECT_EQ(body1.values.at(Metric::dice).value(), 0.0);
  EXPECT_EQ(body1.values.at(Metric::precision).format(), "n/a (pred_empty)");
  EXPECT_EQ(body1.values.at(Metric::hd).format(), "n/a (pred_empty)");
  EXPECT_EQ(body1.values.at(Metric::nsd).value(), 0.0);
  const MetricAggregate& dice = result.channels[0].aggregates.at(Metric::dice);
  EXPECT_DOUBLE_EQ(dice.mean.value(), 2.0 / 3.0);
  EXPECT_EQ(dice.n_values, 3);
  // Pooled Dice from summed counts: 2 TP_all / (2 TP_all + FN of case 1).
  const ConfusionCounts& pooled = result.channels[0].pooled_counts;
  EXPECT_EQ(pooled.fp, 0);
  EXPECT_DOUBLE_EQ(result.channels[0].pooled.dice.value(), 2.0 * pooled.tp / (2.0 * pooled.tp + pooled.fn));
  EXPECT_EQ(result.foreground_mean.at(Metric::dice).n_channels, 3);

  TempDir out;
  write_evaluation_outputs(result, out / "summary.json");
  const std::string json_text = read_text(out / "summary.json");
  const std::string csv = read_text(out / "metrics_per_case.csv");
  EXPECT_EQ(json_text.find("NaN"), std::string::npos);
  EXPECT_EQ(csv.find("nan"), std::string::npos);
  const auto json = read_json_file(out / "summary.json");
  for (const char* key : {"metric_per_case", "mean", "foreground_mean", "mlseg"}) EXPECT_TRUE(json.contains(key)) << key;
  const auto& case1 = json["metric_per_case"][1];
  EXPECT_EQ(case1["metrics"]["body"]["Dice"], 0.0);
  EXPECT_TRUE(case1["metrics"]["body"]["precision"].is_null());
  EXPECT_EQ(case1["metrics"]["body"]["reason"], "pred_empty");
  EXPECT_TRUE(case1.contains("reference_file") && case1.contains("prediction_file"));
  EXPECT_EQ(json["mlseg"]["aggregates"]["body"]["precision"]["n_undefined"]["pred_empty"], 1);
  EXPECT_NE(csv.find("phantom_0001,body,"), std::string::npos);
  const std::string report = format_evaluation_report(result);
  EXPECT_EQ(report.find("nan"), std::string::npos);
  EXPECT_NE(report.find("1 pred_empty"), std::string::npos);
}

TEST(EvaluateFolders, MissingPredictionIsAnErrorUnlessCountedEmpty) {
  PhantomFolders folders;
  fs::remove(folders.pred / "phantom_0002.nii.gz");
  try {
    evaluate_folders(folders.dataset, folders.pred, quiet_options());
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("phantom_0002"), std::string::npos);
    EXPECT_NE(error.fix().find("--missing-as-empty"), std::string::npos);
  }
  EvaluateOptions options = quiet_options();
  options.missing_as_empty = true;
  options.metrics = "dice,iou";
  options.channels = {"organ"};
  const EvaluationResult result = evaluate_folders(folders.dataset / "labelsTr", folders.pred, options);
  ASSERT_EQ(result.channels.size(), 1u);
  EXPECT_EQ(result.missing_predictions, std::vector<std::string>{"phantom_0002"});
  EXPECT_TRUE(result.cases[2].prediction_file.empty());
  EXPECT_EQ(result.cases[2].channels[0].values.at(Metric::dice).value(), 0.0);
  EXPECT_EQ(result.cases[0].channels[0].values.count(Metric::hd95), 0u);
}

TEST(EvaluateFolders, GeometryMismatchNamesTheCase) {
  PhantomFolders folders;
  Image shifted = read_label_image(folders.pred / "phantom_0002.nii.gz");
  shifted.geometry.spacing_zyx_mm[0] *= 2;
  write_image(shifted, folders.pred / "phantom_0002.nii.gz");
  try {
    evaluate_folders(folders.dataset, folders.pred, quiet_options());
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.where().case_id, "phantom_0002");
    EXPECT_NE(error.problem().find("spacing"), std::string::npos);
  }
}

TEST(EvaluateCli, WritesOutputsAndExitsTwoOnBadInput) {
  PhantomFolders folders;
  const auto ok = testing::run_mlseg("evaluate --ref " + folders.dataset.string() + " --pred " + folders.pred.string() +
                                     " --metrics dice,hd95,nsd --nsd-tolerance-mm 1,lesion=2 --empty-policy zero -o " +
                                     (folders.temp / "out" / "s.json").string());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(fs::exists(folders.temp / "out" / "s.json"));
  EXPECT_TRUE(fs::exists(folders.temp / "out" / "metrics_per_case.csv"));
  EXPECT_NE(ok.stdout_text.find("pooled Dice"), std::string::npos);
  EXPECT_EQ(ok.output.find("nan"), std::string::npos);
  const auto json = read_json_file(folders.temp / "out" / "s.json");
  EXPECT_EQ(json["mlseg"]["nsd_tolerance_mm"]["lesion"], 2.0);
  EXPECT_EQ(json["mlseg"]["empty_policy"], "zero");
  const auto bad = testing::run_mlseg("evaluate --ref " + folders.dataset.string() + " --pred " +
                                      (folders.temp / "nowhere").string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  const auto bad_metric = testing::run_mlseg("evaluate --ref " + folders.dataset.string() + " --pred " +
                                             folders.pred.string() + " --metrics dice,hausdorff");
  EXPECT_EQ(bad_metric.exit_code, 2) << bad_metric.output;
}

// nnU-Net's region Dice computed independently from the raw label maps.
struct RegionCounts {
  std::int64_t tp, fp, fn;
};
RegionCounts region_counts(const torch::Tensor& ref, const torch::Tensor& pred, const std::vector<std::int64_t>& labels) {
  torch::Tensor r = torch::zeros_like(ref, torch::kBool), p = torch::zeros_like(pred, torch::kBool);
  for (std::int64_t label : labels) {
    r |= ref == label;
    p |= pred == label;
  }
  return {(r & p).sum().item<std::int64_t>(), (p & ~r).sum().item<std::int64_t>(), (r & ~p).sum().item<std::int64_t>()};
}

TEST(EvaluateRealData, BratsToolkitAlgorithmsAgainstEachOther) {
  MLSEG_REQUIRE_SHARED_DATA();
  const fs::path source = testing::shared_data_dir() / "brats_toolkit_predictions";
  const std::vector<std::string> cases{"OtherEXampleFromTCIA", "TCGA-DU-7294"};
  const std::vector<std::string> algorithms{"hnfnetv1-20", "isen-20", "sanet0-20", "scan-20", "yixinmpl-20"};
  TempDir temp;
  nlohmann::ordered_json json;
  json["channel_names"] = {{"0", "FLAIR"}};
  json["labels"] = {{"background", 0}, {"WT", {1, 2, 4}}, {"TC", {1, 4}}, {"ET", 4}};
  json["regions_class_order"] = {2, 1, 4};
  json["file_ending"] = ".nii.gz";
  write_json_file(temp / "dataset.json", json);
  for (const auto& algorithm : algorithms) {
    fs::create_directories(temp / algorithm);
    for (const auto& c : cases) fs::create_symlink(source / c / "segmentation" / (algorithm + ".nii.gz"), temp / algorithm / (c + ".nii.gz"));
  }
  const std::vector<std::vector<std::int64_t>> regions{{1, 2, 4}, {1, 4}, {4}};
  EvaluateOptions options = quiet_options();
  options.dataset_json = temp / "dataset.json";
  options.metrics = "dice,iou,precision,recall";
  int et_both_empty = 0, et_one_empty = 0;
  const std::string reference = "hnfnetv1-20";
  std::map<std::string, torch::Tensor> labels;  // each file read once
  const auto label_of = [&](const std::string& algorithm, const std::string& c) {
    const std::string key = algorithm + "/" + c;
    if (!labels.count(key)) labels[key] = read_label_image(temp / algorithm / (c + ".nii.gz")).data;
    return labels[key];
  };
  for (const auto& algorithm : algorithms) {
    if (algorithm == reference) continue;
    const EvaluationResult result = evaluate_folders(temp / reference, temp / algorithm, options);
    ASSERT_EQ(result.cases.size(), 2u);
    EXPECT_EQ(*result.channels[0].nnunet_key, "(1, 2, 4)");
    EXPECT_EQ(*result.channels[2].nnunet_key, "4");
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const torch::Tensor ref = label_of(reference, cases[i]);
      const torch::Tensor pred = label_of(algorithm, cases[i]);
      for (std::size_t k = 0; k < regions.size(); ++k) {
        const RegionCounts expected = region_counts(ref, pred, regions[k]);
        const ChannelCaseMetrics& m = result.cases[i].channels[k];
        EXPECT_EQ(m.counts.tp, expected.tp) << cases[i] << " " << algorithm << " " << k;
        EXPECT_EQ(m.counts.fp, expected.fp);
        EXPECT_EQ(m.counts.fn, expected.fn);
        const std::int64_t denominator = 2 * expected.tp + expected.fp + expected.fn;
        if (denominator == 0) {  // nnU-Net: NaN; here n/a (both_empty)
          EXPECT_EQ(m.values.at(Metric::dice).format(), "n/a (both_empty)");
          ++et_both_empty;
        } else {
          EXPECT_EQ(m.values.at(Metric::dice).value(), 2.0 * expected.tp / static_cast<double>(denominator));
          EXPECT_EQ(m.values.at(Metric::iou).value(),
                    static_cast<double>(expected.tp) / static_cast<double>(expected.tp + expected.fp + expected.fn));
        }
        if (k == 2 && denominator != 0 && (expected.tp + expected.fn == 0 || expected.tp + expected.fp == 0)) {
          ++et_one_empty;
          EXPECT_EQ(m.values.at(Metric::dice).value(), 0.0);
          EXPECT_FALSE((expected.tp + expected.fn == 0 ? m.values.at(Metric::recall) : m.values.at(Metric::precision)).defined());
        }
      }
    }
  }
  // TCGA-DU-7294: three of five algorithms predict no ET, so ET rows are empty on one or both sides.
  EXPECT_GT(et_both_empty + et_one_empty, 0);
}

TEST(EvaluateRealData, BratsSurfaceMetricsOnEmptyEnhancingTumour) {
  MLSEG_REQUIRE_SHARED_DATA();
  const fs::path source = testing::shared_data_dir() / "brats_toolkit_predictions" / "TCGA-DU-7294" / "segmentation";
  TempDir temp;
  nlohmann::ordered_json json;
  json["labels"] = {{"background", 0}, {"WT", {1, 2, 4}}, {"TC", {1, 4}}, {"ET", 4}};
  json["regions_class_order"] = {2, 1, 4};
  json["file_ending"] = ".nii.gz";
  write_json_file(temp / "dataset.json", json);
  // Find one algorithm with ET and one without, then score them both ways.
  std::string with_et, without_et;
  for (const char* algorithm : {"hnfnetv1-20", "isen-20", "sanet0-20", "scan-20", "yixinmpl-20"}) {
    const bool has_et = (read_label_image(source / (std::string(algorithm) + ".nii.gz")).data == 4).any().item<bool>();
    (has_et ? with_et : without_et) = algorithm;
  }
  ASSERT_FALSE(with_et.empty());
  ASSERT_FALSE(without_et.empty());
  for (const auto& [name, algorithm] : {std::pair{"a", with_et}, std::pair{"b", without_et}}) {
    fs::create_directories(temp / name);
    fs::create_symlink(source / (algorithm + ".nii.gz"), temp / name / "TCGA-DU-7294.nii.gz");
  }
  EvaluateOptions options = quiet_options();
  options.dataset_json = temp / "dataset.json";
  options.metrics = "dice,hd95,assd,nsd";
  options.channels = {"WT", "ET"};
  const EvaluationResult ref_has = evaluate_folders(temp / "a", temp / "b", options);
  const auto& et = ref_has.cases[0].channels[1];
  EXPECT_EQ(et.values.at(Metric::dice).value(), 0.0);
  EXPECT_EQ(et.values.at(Metric::hd95).format(), "n/a (pred_empty)");
  EXPECT_EQ(et.values.at(Metric::nsd).value(), 0.0);
  const auto& wt = ref_has.cases[0].channels[0];
  EXPECT_GT(wt.values.at(Metric::nsd).value(), 0.5);  // two good algorithms agree on the whole tumour
  EXPECT_LT(wt.values.at(Metric::hd95).value(), 20.0);
  options.hd_empty_penalty = parse_hd_empty_penalty("diagonal");
  const EvaluationResult ref_empty = evaluate_folders(temp / "b", temp / "a", options);
  EXPECT_DOUBLE_EQ(ref_empty.cases[0].channels[1].values.at(Metric::hd95).value(), std::sqrt(155.0 * 155 + 240.0 * 240 * 2));
  EXPECT_EQ(ref_empty.cases[0].channels[1].values.at(Metric::dice).value(), 0.0);
  // Symmetry: WT distances are the same both ways.
  EXPECT_DOUBLE_EQ(ref_empty.cases[0].channels[0].values.at(Metric::hd95).value(), wt.values.at(Metric::hd95).value());
  EXPECT_DOUBLE_EQ(ref_empty.cases[0].channels[0].values.at(Metric::nsd).value(), wt.values.at(Metric::nsd).value());
}

}  // namespace
}  // namespace mlseg
