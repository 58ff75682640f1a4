#include "mlseg/report/run_layout.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "mlseg/core/error.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/io/json_file.h"

namespace mlseg {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPassWhat =
    "pass the dataset's work folder WORK/<dataset> (e.g. mlseg_work/Dataset004_Hippocampus), or one of its "
    "results/<config> or results/<config>/fold_<k> folders";

bool is_dataset_work_dir(const fs::path& dir) {
  return fs::is_directory(dir / "analysis") || fs::is_regular_file(dir / "plans.json") ||
         fs::is_regular_file(dir / "splits_final.json") || fs::is_directory(dir / "results") ||
         fs::is_directory(dir / "preprocessed");
}

bool is_raw_dataset(const fs::path& dir) {
  return fs::is_regular_file(dir / "dataset.json") && (fs::is_directory(dir / "imagesTr") || fs::is_directory(dir / "labelsTr"));
}

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::vector<std::string> sorted_subfolders(const fs::path& dir, const std::string& prefix = "") {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind(prefix, 0) == 0) names.push_back(name.substr(prefix.size()));
  }
  // Numeric folds in numeric order, then "all".
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    const bool a_digits = all_digits(a);
    const bool b_digits = all_digits(b);
    if (a_digits && b_digits) return a.size() != b.size() ? a.size() < b.size() : a < b;
    if (a_digits != b_digits) return a_digits;
    return a < b;
  });
  return names;
}

// The raw dataset: --dataset, else the folder the validation's summary.json was scored against,
// else WORK/raw/<dataset> (scripts/demo.sh's layout), else $nnUNet_raw/<dataset>.
void find_raw_dataset(RunLayout& layout, const ReportOptions& options) {
  if (!options.raw_dataset_dir.empty()) {
    if (!is_raw_dataset(options.raw_dataset_dir)) {
      throw Error("--dataset " + options.raw_dataset_dir.string() + " is not a raw dataset folder (no dataset.json with imagesTr/labelsTr)",
                  "pass the raw dataset folder that analyze and train read (it holds dataset.json, imagesTr, labelsTr)",
                  {options.raw_dataset_dir.string(), "", ""});
    }
    layout.raw_dataset_dir = fs::absolute(options.raw_dataset_dir);
    layout.raw_dataset_note = "given by --dataset";
    return;
  }
  for (const std::string& fold : layout.folds) {
    const fs::path summary = layout.fold_dir(fold) / "validation" / "summary.json";
    if (!fs::is_regular_file(summary)) continue;
    try {
      const auto json = read_json_file(summary);
      if (!json.contains("mlseg")) continue;
      const auto& extras = json["mlseg"];
      std::vector<fs::path> candidates;
      if (extras.contains("dataset_json") && extras["dataset_json"].is_string()) {
        candidates.push_back(fs::path(extras["dataset_json"].get<std::string>()).parent_path());
      }
      if (extras.contains("reference_dir") && extras["reference_dir"].is_string()) {
        const fs::path reference = extras["reference_dir"].get<std::string>();
        candidates.push_back(reference.parent_path());
        candidates.push_back(reference);
      }
      for (const fs::path& candidate : candidates) {
        if (is_raw_dataset(candidate)) {
          layout.raw_dataset_dir = fs::absolute(candidate);
          layout.raw_dataset_note = "found from " + summary.string();
          return;
        }
      }
    } catch (const Error&) {
      continue;  // the validation section reports an unreadable summary
    }
  }
  std::vector<fs::path> candidates = {layout.dataset_work_dir.parent_path() / "raw" / layout.dataset_name};
  if (const char* nnunet_raw = std::getenv("nnUNet_raw")) candidates.push_back(fs::path(nnunet_raw) / layout.dataset_name);
  for (const fs::path& candidate : candidates) {
    if (is_raw_dataset(candidate)) {
      layout.raw_dataset_dir = candidate;
      layout.raw_dataset_note = "found at " + candidate.string();
      return;
    }
  }
  layout.raw_dataset_note = "raw dataset not found (looked for validation/summary.json's dataset_json and " +
                            candidates.front().string() + "): pass --dataset RAW_DIR";
}

}  // namespace

RunLayout locate_run(const fs::path& run_dir_in, const ReportOptions& options) {
  if (!fs::exists(run_dir_in)) {
    throw Error("run folder " + run_dir_in.string() + " does not exist", kPassWhat, {run_dir_in.string(), "", ""});
  }
  if (!fs::is_directory(run_dir_in)) {
    throw Error(run_dir_in.string() + " is a file, not a run folder", kPassWhat, {run_dir_in.string(), "", ""});
  }
  const fs::path run_dir = fs::weakly_canonical(fs::absolute(run_dir_in));
  RunLayout layout;
  std::string path_configuration, path_fold;
  const std::string name = run_dir.filename().string();
  const fs::path parent = run_dir.parent_path();
  if (name.rfind("fold_", 0) == 0 && parent.parent_path().filename() == "results") {
    path_fold = name.substr(5);
    path_configuration = parent.filename().string();
    layout.dataset_work_dir = parent.parent_path().parent_path();
  } else if (parent.filename() == "results") {
    path_configuration = name;
    layout.dataset_work_dir = parent.parent_path();
  } else if (name == "results") {
    layout.dataset_work_dir = parent;
  } else {
    layout.dataset_work_dir = run_dir;
  }

  // The raw dataset folder, as every other command takes it: its outputs are under the work folder.
  bool raw_given = false;
  if (!is_dataset_work_dir(layout.dataset_work_dir) && is_raw_dataset(run_dir)) {
    layout.dataset_work_dir = dataset_work_dir(resolve_work_dir(options.work_dir), name);
    if (!is_dataset_work_dir(layout.dataset_work_dir)) {
      throw Error(run_dir.string() + " is a raw dataset folder, and its work folder " + layout.dataset_work_dir.string() +
                      " holds no outputs of analyze, plan or train",
                  "pass --work-dir (the one given to analyze and train), or the work folder WORK/" + name + " itself",
                  {run_dir.string(), "", ""});
    }
    raw_given = true;
  }
  if (!is_dataset_work_dir(layout.dataset_work_dir)) {
    std::vector<std::string> datasets;
    for (const std::string& sub : sorted_subfolders(run_dir)) {
      if (is_dataset_work_dir(run_dir / sub)) datasets.push_back(sub);
    }
    std::string fix = kPassWhat;
    if (!datasets.empty()) {
      fix = "this looks like the work folder itself: pass one of its datasets:";
      for (const std::string& dataset : datasets) fix += " " + (run_dir / dataset).string();
    }
    throw Error(run_dir.string() + " is not a dataset work folder (it has none of analysis/, plans.json, splits_final.json, results/)",
                fix, {run_dir.string(), "", ""});
  }
  layout.dataset_name = layout.dataset_work_dir.filename().string();

  layout.configurations = sorted_subfolders(layout.dataset_work_dir / "results");
  if (!options.configuration.empty()) {
    if (!path_configuration.empty() && path_configuration != options.configuration) {
      throw Error("--config " + options.configuration + " contradicts the folder " + run_dir.string() +
                      " (configuration " + path_configuration + ")",
                  "leave --config out, or pass the dataset's work folder " + layout.dataset_work_dir.string());
    }
    layout.configuration = options.configuration;
  } else if (!path_configuration.empty()) {
    layout.configuration = path_configuration;
  } else if (std::find(layout.configurations.begin(), layout.configurations.end(), "3d_fullres") !=
             layout.configurations.end()) {
    layout.configuration = "3d_fullres";
  } else if (!layout.configurations.empty()) {
    layout.configuration = layout.configurations.front();
  }

  if (!options.fold.empty()) {
    if (!path_fold.empty() && path_fold != options.fold) {
      throw Error("--fold " + options.fold + " contradicts the folder " + run_dir.string() + " (fold " + path_fold + ")",
                  "leave --fold out, or pass results/" + layout.configuration);
    }
    layout.folds = {options.fold};
  } else if (!path_fold.empty()) {
    layout.folds = {path_fold};
  } else if (!layout.configuration.empty()) {
    layout.folds = sorted_subfolders(layout.results_dir(), "fold_");
  }
  ReportOptions raw_options = options;
  if (raw_given && raw_options.raw_dataset_dir.empty()) raw_options.raw_dataset_dir = run_dir;
  find_raw_dataset(layout, raw_options);
  return layout;
}

}  // namespace mlseg
