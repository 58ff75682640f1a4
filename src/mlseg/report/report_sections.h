#pragma once
// The report's sections (one file each) and what they share. Internal to report/.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/planning/plans_file.h"
#include "mlseg/report/html_document.h"
#include "mlseg/report/run_layout.h"

namespace mlseg::report_detail {

using Json = nlohmann::ordered_json;

struct ReportInputs {
  RunLayout layout;
  ReportOptions options;
  std::optional<Json> fingerprint;  ///< analysis/fingerprint.json
  std::optional<Json> labels;       ///< analysis/labels.json
  std::optional<Json> splits;       ///< splits_final.json
  std::optional<PlansFile> plans;   ///< plans.json (read_plans); a file that fails its checks is in `problems`
  std::vector<std::string> channel_names;
  std::vector<std::string> problems;  ///< input files that exist but could not be read

  /// "mlseg <stage> RAW_DATASET --work-dir WORK" with the paths this run uses.
  std::string command(const std::string& stage, const std::string& extra = "") const;
};

/// The file parsed, nullopt when absent; a file that does not parse is recorded in `problems`.
std::optional<Json> read_optional_json(const std::filesystem::path& path, std::vector<std::string>& problems);

/// Key `key` of `object` when object is a JSON object holding it; else nullptr.
const Json* find_key(const Json& object, const std::string& key);
double number_or_nan(const Json* value);

/// "a, b, c".
std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

/// base64 as embedded in the page: lines of 76 characters, and no "nan" run (URL parsers drop
/// the line breaks; the page's no-"nan" guarantee then holds for images too).
std::string embeddable_base64(const std::string& base64);

void add_dataset_section(const ReportInputs& inputs, HtmlDocument& doc);
void add_label_statistics_section(const ReportInputs& inputs, HtmlDocument& doc);
void add_fold_coverage_section(const ReportInputs& inputs, HtmlDocument& doc);
void add_training_section(const ReportInputs& inputs, HtmlDocument& doc);
void add_final_validation_section(const ReportInputs& inputs, HtmlDocument& doc);
void add_evaluation_summary_section(const ReportInputs& inputs, HtmlDocument& doc);
void add_validation_images_section(const ReportInputs& inputs, HtmlDocument& doc);
void add_model_selection_section(const ReportInputs& inputs, HtmlDocument& doc);

}  // namespace mlseg::report_detail
