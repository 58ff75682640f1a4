#pragma once
// A small real run folder for the report tests, built once per test process from library calls:
// a phantom dataset, analyze's real fingerprint/labels/splits, a hand-written plans.json and
// training log (the schema training writes), and fold 0's validation predictions scored by
// evaluate. Fold 1 exists but is empty (a run still waiting for training).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <cctype>
#include <string>

#include "mlseg/analysis/analyze.h"
#include "mlseg/evaluation/evaluate.h"
#include "mlseg/evaluation/evaluation_report.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace mlseg::testing {

namespace fs = std::filesystem;

struct SyntheticRun {
  std::filesystem::path root;
  std::filesystem::path raw_dataset;   ///< ROOT/raw/Dataset900_Phantom
  std::filesystem::path work_dir;      ///< ROOT/work
  std::filesystem::path dataset_work;  ///< ROOT/work/Dataset900_Phantom
  std::filesystem::path fold0;         ///< .../results/3d_fullres/fold_0
};

namespace report_test_detail {

constexpr const char* kPlans = R"({
  "dataset_name": "Dataset900_Phantom",
  "plans_name": "mlsegPlans",
  "configurations": {
    "3d_fullres": {"batch_size": 2, "patch_size": [8, 24, 24], "spacing": [2.0, 1.0, 1.0], "normalization_schemes": ["zscore"]}
  },
  "label_encoding": "sigmoid",
  "label_encoding_source": "analyze recommends sigmoid",
  "channel_names": ["body", "organ", "lesion", "vessel", "cyst", "rare"]
})";

// Epoch 0 has no validation loss and no mean yet; epoch 2 was not validated; "rare" is never in
// the validation patches; the last line was cut off by a crash.
inline std::string training_log() {
  std::string log;
  const double losses[] = {0.9, 0.7, 0.55, 0.5, 0.45};
  for (int epoch = 0; epoch < 5; ++epoch) {
    const double dice = 0.2 + 0.15 * epoch;
    std::string channels;
    const char* names[] = {"body", "organ", "lesion", "vessel", "cyst"};
    for (int c = 0; c < 5; ++c) {
      channels += std::string("{\"name\":\"") + names[c] + "\",\"tp\":10,\"fp\":2,\"fn\":3,\"dice\":" +
                  std::to_string(dice - 0.03 * c) + ",\"patches_with_channel\":" + std::to_string(12 - c) + "},";
    }
    channels += R"({"name":"rare","tp":0,"fp":0,"fn":0,"dice":null,"reason":"absent_from_validation","patches_with_channel":0})";
    const std::string mean = epoch == 0 ? R"(null,"mean_dice_reason":"absent_from_validation")" : std::to_string(dice);
    const std::string ema = epoch == 0 ? "null" : std::to_string(dice - 0.05);
    const std::string val_loss = epoch == 0 ? R"(null,"val_loss_reason":"not_computed")" : std::to_string(losses[epoch] + 0.05);
    const std::string validation = epoch == 2 ? "null"
                                              : "{\"patches\":20,\"mean_dice\":" + mean + ",\"mean_over_channels\":5,"
                                                "\"ema_mean_dice\":" + ema + ",\"channels\":[" + channels + "]}";
    log += "{\"epoch\":" + std::to_string(epoch) + ",\"train_loss\":" + std::to_string(losses[epoch]) +
           ",\"val_loss\":" + (epoch == 2 ? std::string(R"(null,"val_loss_reason":"not_validated_this_epoch")") : val_loss) +
           ",\"lr\":" + std::to_string(0.01 * (1.0 - epoch / 5.0)) +
           ",\"epoch_seconds\":12.5,\"iterations\":250,\"skipped_steps\":0,\"validation\":" + validation +
           ",\"ema_mean_dice\":" + ema + ",\"best\":" + (epoch >= 3 ? "true" : "false") +
           R"(,"train_coverage":{"patches":500,"patches_with_channel":{"body":480,"organ":300,"lesion":90,"vessel":200,"cyst":150,"rare":25}}})" +
           "\n";
  }
  return log + "{\"epoch\":5,\"train_lo";
}

inline void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace report_test_detail

/// Built on first use; removed when the test process ends.
inline const SyntheticRun& synthetic_run() {
  static std::unique_ptr<TempDir> dir;
  static SyntheticRun run;
  if (dir) return run;
  dir = std::make_unique<TempDir>();
  run.root = dir->path();
  run.raw_dataset = run.root / "raw" / "Dataset900_Phantom";
  run.work_dir = run.root / "work";
  run.dataset_work = run.work_dir / "Dataset900_Phantom";
  run.fold0 = run.dataset_work / "results" / "3d_fullres" / "fold_0";

  PhantomOptions phantom;
  phantom.num_cases = 4;
  phantom.shape_zyx = {8, 24, 24};
  phantom.num_channels = 6;
  phantom.show_progress = false;
  phantom.threads = 1;
  write_phantom_dataset(run.raw_dataset, phantom);

  AnalyzeOptions analyze;
  analyze.work_dir = run.work_dir.string();
  analyze.show_progress = false;
  analyze.threads = 1;
  analyze.num_folds = 2;
  analyze.foreground_samples = 10'000;
  analyze_dataset(run.raw_dataset, analyze);

  report_test_detail::write_text(run.dataset_work / "plans.json", report_test_detail::kPlans);
  report_test_detail::write_text(run.fold0 / "log.jsonl", report_test_detail::training_log());
  fs::create_directories(run.dataset_work / "results" / "3d_fullres" / "fold_1");

  // "Predictions": another phantom's labels (same case ids and grid, other seed).
  PhantomOptions other = phantom;
  other.seed = 99;
  const fs::path predicted = run.root / "predicted";
  write_phantom_dataset(predicted, other);
  fs::create_directories(run.fold0 / "validation");
  for (const auto& entry : fs::directory_iterator(predicted / "labelsTr")) {
    fs::copy_file(entry.path(), run.fold0 / "validation" / entry.path().filename());
  }
  EvaluateOptions evaluate;
  evaluate.show_progress = false;
  evaluate.threads = 1;
  const EvaluationResult result = evaluate_folders(run.raw_dataset, run.fold0 / "validation", evaluate);
  write_evaluation_outputs(result, run.fold0 / "validation" / kSummaryFileName);
  return run;
}

/// Everything in `html` that would be a problem in a self-contained page: "nan" (any case),
/// scripts, and references to other places. Empty when clean.
inline std::string self_contained_page_problems(const std::string& html) {
  std::string lower(html.size(), ' ');
  std::transform(html.begin(), html.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string problems;
  if (const auto at = lower.find("nan"); at != std::string::npos) {
    problems += "'nan' at " + std::to_string(at) + ": ..." + html.substr(at < 60 ? 0 : at - 60, 120) + "...\n";
  }
  for (const char* bad : {"<script", "@import", "src=\"http", "href=\"http", "src=\"//", "href=\"//", "<iframe", "<object"}) {
    if (lower.find(bad) != std::string::npos) problems += std::string("contains ") + bad + "\n";
  }
  for (auto at = lower.find("url("); at != std::string::npos; at = lower.find("url(", at + 1)) {
    if (lower.compare(at, 5, "url(#") != 0) problems += "a CSS url() that is not a fragment\n";
  }
  return problems;
}

/// Standard base64; whitespace and padding skipped.
inline std::string base64_decode(const std::string& text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const auto index = alphabet.find(c);
    if (index == std::string::npos) continue;  // whitespace, padding
    buffer = (buffer << 6) | static_cast<std::uint32_t>(index);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace mlseg::testing
