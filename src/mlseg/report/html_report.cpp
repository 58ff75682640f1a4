#include "mlseg/report/html_report.h"

#include <cctype>
#include <cmath>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/report/report_sections.h"

namespace mlseg {

namespace fs = std::filesystem;

namespace report_detail {

std::string ReportInputs::command(const std::string& stage, const std::string& extra) const {
  const std::string raw = layout.raw_dataset_dir.empty() ? "RAW_DATASET" : layout.raw_dataset_dir.string();
  std::string text = "mlseg " + stage + " " + raw + " --work-dir " + layout.dataset_work_dir.parent_path().string();
  if (!extra.empty()) text += " " + extra;
  return text;
}

std::optional<Json> read_optional_json(const fs::path& path, std::vector<std::string>& problems) {
  if (!fs::is_regular_file(path)) return std::nullopt;
  try {
    return read_json_file(path);
  } catch (const Error& error) {
    problems.push_back(error.what());
    return std::nullopt;
  }
}

const Json* find_key(const Json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  const auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

double number_or_nan(const Json* value) {
  return value != nullptr && value->is_number() ? value->get<double>() : std::nan("");
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

std::string embeddable_base64(const std::string& base64) {
  constexpr std::size_t kLineLength = 76;
  std::string out;
  out.reserve(base64.size() + base64.size() / kLineLength + 16);
  std::size_t on_line = 0;
  const auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  for (std::size_t i = 0; i < base64.size(); ++i) {
    // Break "n" + "a" + "n" (any case) between its first two letters.
    const bool breaks_nan = i + 2 < base64.size() && lower(base64[i]) == 'n' && lower(base64[i + 1]) == 'a' &&
                            lower(base64[i + 2]) == 'n';
    out += base64[i];
    if (++on_line == kLineLength || breaks_nan) {
      out += '\n';
      on_line = 0;
    }
  }
  return out;
}

}  // namespace report_detail

std::string build_report(const fs::path& run_dir, const ReportOptions& options) {
  using namespace report_detail;
  ReportInputs inputs;
  inputs.layout = locate_run(run_dir, options);
  inputs.options = options;
  const RunLayout& layout = inputs.layout;
  inputs.fingerprint = read_optional_json(layout.analysis_dir() / "fingerprint.json", inputs.problems);
  inputs.labels = read_optional_json(layout.analysis_dir() / "labels.json", inputs.problems);
  inputs.splits = read_optional_json(layout.dataset_work_dir / "splits_final.json", inputs.problems);
  if (const fs::path plans = layout.dataset_work_dir / "plans.json"; fs::is_regular_file(plans)) {
    try {
      inputs.plans = read_plans(plans);
    } catch (const Error& error) {
      inputs.problems.push_back(error.what());
    }
  }
  if (inputs.labels) {
    if (const Json* names = find_key(*inputs.labels, "channel_names"); names != nullptr && names->is_array()) {
      for (const Json& name : *names) {
        if (name.is_string()) inputs.channel_names.push_back(name.get<std::string>());
      }
    }
  }
  if (inputs.channel_names.empty() && inputs.plans) inputs.channel_names = inputs.plans->channel_names;

  HtmlDocument doc;
  add_dataset_section(inputs, doc);
  add_label_statistics_section(inputs, doc);
  add_fold_coverage_section(inputs, doc);
  add_training_section(inputs, doc);
  add_final_validation_section(inputs, doc);
  add_evaluation_summary_section(inputs, doc);
  add_validation_images_section(inputs, doc);
  add_model_selection_section(inputs, doc);

  std::string subtitle = "Work folder " + layout.dataset_work_dir.string();
  if (!layout.configuration.empty()) subtitle += "; configuration " + layout.configuration;
  if (!layout.folds.empty()) subtitle += "; folds " + join(layout.folds);
  subtitle += ". Written by mlseg report; self-contained (no scripts, nothing loaded from elsewhere).";
  return doc.finish("mlseg report: " + layout.dataset_name, subtitle);
}

void write_report(const fs::path& run_dir, const fs::path& output, const ReportOptions& options) {
  write_text_file_atomically(output, build_report(run_dir, options));
}

}  // namespace mlseg
