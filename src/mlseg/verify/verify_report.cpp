// verify's two outputs: the human report and the JSON report.
#include <sstream>

#include "mlseg/core/progress.h"
#include "mlseg/core/text_table.h"
#include "mlseg/verify/verify.h"

namespace mlseg {

std::string format_verify_report(const VerifyReport& report, std::size_t max_problem_rows) {
  std::ostringstream out;
  out << "mlseg verify: " << report.dataset_name << "\n";
  if (!report.label_format.empty()) {
    std::string image_channels;
    for (std::size_t i = 0; i < report.image_channels.size(); ++i) image_channels += (i ? ", " : "") + report.image_channels[i];
    out << "  " << report.num_training_cases << " training cases, " << report.num_test_cases << " test cases; image "
        << (report.image_channels.size() == 1 ? "file: " : "files: ") << image_channels << "; labels: "
        << report.label_format << ", " << report.channels.size() << " channels\n";
  }
  out << "\n";
  if (!report.problems.empty()) {
    TextTable table({"severity", "case", "file", "problem", "fix"});
    table.keep_whole(1);
    table.keep_whole(2);
    std::size_t shown = 0;
    for (const auto& problem : report.problems) {
      if (shown++ >= max_problem_rows) break;
      table.add_row({problem.severity == Severity::error ? "ERROR" : "warning", problem.case_id.empty() ? "-" : problem.case_id,
                     problem.file.empty() ? "-" : problem.file, problem.message, problem.fix});
    }
    out << table.render(60);
    if (report.problems.size() > max_problem_rows) {
      out << "... and " << report.problems.size() - max_problem_rows << " more problems (all of them with --json)\n";
    }
    out << "\n";
  }
  if (!report.channels.empty()) {
    TextTable table({"channel", "cases with it", "voxels"});
    for (const auto& channel : report.channels) {
      table.add_row({channel.name, std::to_string(channel.cases_present) + "/" + std::to_string(report.num_training_cases),
                     std::to_string(channel.voxels)});
    }
    out << table.render() << "\n";
  }
  const auto errors = report.num_errors(), warnings = report.num_warnings();
  out << "verify: " << errors << (errors == 1 ? " error, " : " errors, ") << warnings
      << (warnings == 1 ? " warning" : " warnings") << " in " << format_duration(report.seconds);
  out << (errors == 0 && warnings == 0 ? " - the dataset is clean\n" : errors == 0 ? " - usable; read the warnings\n" : " - fix the errors before training\n");
  return out.str();
}

nlohmann::ordered_json verify_report_to_json(const VerifyReport& report) {
  nlohmann::ordered_json json;
  json["dataset"] = report.dataset_name;
  json["label_format"] = report.label_format;
  json["num_training_cases"] = report.num_training_cases;
  json["num_test_cases"] = report.num_test_cases;
  json["image_channels"] = report.image_channels;
  json["errors"] = report.num_errors();
  json["warnings"] = report.num_warnings();
  json["problems"] = nlohmann::ordered_json::array();
  for (const auto& problem : report.problems) {
    json["problems"].push_back({{"severity", problem.severity == Severity::error ? "error" : "warning"},
                                {"code", problem.code},
                                {"case", problem.case_id},
                                {"file", problem.file},
                                {"message", problem.message},
                                {"fix", problem.fix}});
  }
  json["channels"] = nlohmann::ordered_json::array();
  for (const auto& channel : report.channels) {
    json["channels"].push_back({{"name", channel.name}, {"cases_present", channel.cases_present}, {"voxels", channel.voxels}});
  }
  json["seconds"] = report.seconds;
  return json;
}

}  // namespace mlseg
