#pragma once
// verify: nnU-Net's dataset integrity checks and more. Every problem is collected (never
// stop-at-first); each names the case, the file, what is wrong and what to do.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/core/geometry.h"
#include "mlseg/io/image_io.h"

namespace mlseg {

struct VerifyOptions {
  int threads = 0;                 ///< 0 = all cores
  bool show_progress = true;       ///< progress on stderr
  GeometryTolerance tolerance;     ///< image/label geometry agreement
  ImageReadOptions read;           ///< header guards, label integer tolerance
  bool check_duplicates = true;    ///< identical image or label content across cases
};

enum class Severity { warning, error };

struct VerifyProblem {
  Severity severity = Severity::error;
  std::string code;  ///< stable identifier, e.g. "label_value_not_declared"
  std::string case_id;
  std::string file;
  std::string message;
  std::string fix;
};

struct ChannelPresence {
  std::string name;
  std::int64_t cases_present = 0;  ///< training cases with at least one voxel
  std::int64_t voxels = 0;         ///< summed over training cases
};

struct VerifyReport {
  std::string dataset_name;
  std::string label_format;
  std::int64_t num_training_cases = 0;
  std::int64_t num_test_cases = 0;
  std::vector<std::string> image_channels;
  std::vector<ChannelPresence> channels;
  std::vector<VerifyProblem> problems;  ///< errors first, then warnings; by case within each
  double seconds = 0;

  std::int64_t num_errors() const;
  std::int64_t num_warnings() const;
  /// 0 clean, 1 warnings only with `strict`, 2 errors (also for warnings-only without strict: 0).
  int exit_code(bool strict) const;
};

/// Runs every check on the dataset folder. Never throws for problems in the data: a dataset.json
/// that cannot be parsed becomes one error in the report.
VerifyReport verify_dataset(const std::filesystem::path& dataset_dir, const VerifyOptions& options = {});

/// The human report: summary, problems table, channel presence, closing counts.
std::string format_verify_report(const VerifyReport& report, std::size_t max_problem_rows = 60);

nlohmann::ordered_json verify_report_to_json(const VerifyReport& report);

}  // namespace mlseg
