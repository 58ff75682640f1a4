#pragma once
// Where a run's files are: the dataset work folder (ARCHITECTURE.md "Conventions"), the
// configuration and folds to report, and the raw dataset behind them.
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/report/report_options.h"

namespace mlseg {

struct RunLayout {
  std::filesystem::path dataset_work_dir;  ///< WORK/<dataset>
  std::string dataset_name;
  std::string configuration;                ///< empty when nothing was trained
  std::vector<std::string> configurations;  ///< every results/<config> found
  std::vector<std::string> folds;           ///< "0", "1", ..., "all": the folds to report
  std::filesystem::path raw_dataset_dir;    ///< empty when not found
  std::string raw_dataset_note;             ///< how it was found, or why not

  std::filesystem::path analysis_dir() const { return dataset_work_dir / "analysis"; }
  std::filesystem::path results_dir() const { return dataset_work_dir / "results" / configuration; }
  std::filesystem::path fold_dir(const std::string& fold) const { return results_dir() / ("fold_" + fold); }
};

/// Accepts WORK/<dataset>, WORK/<dataset>/results, results/<config> or results/<config>/fold_<k>.
/// Throws mlseg::Error when the folder does not exist or is none of these (naming what to pass).
RunLayout locate_run(const std::filesystem::path& run_dir, const ReportOptions& options = {});

}  // namespace mlseg
