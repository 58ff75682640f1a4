#pragma once
// mlseg report: one self-contained HTML page (inline SVG charts, embedded PNG slices, no scripts,
// nothing fetched) from the files the stages wrote under WORK/<dataset>. Every section is
// optional: without its input file it says which command writes that file.
#include <filesystem>
#include <string>

#include "mlseg/report/report_options.h"

namespace mlseg {

/// The page for `run_dir` (see locate_run for what it may be). Throws mlseg::Error only when
/// run_dir is not a run folder; unreadable inputs become notes in their section.
std::string build_report(const std::filesystem::path& run_dir, const ReportOptions& options = {});

/// build_report written atomically to `output` (parent folders created).
void write_report(const std::filesystem::path& run_dir, const std::filesystem::path& output,
                  const ReportOptions& options = {});

}  // namespace mlseg
