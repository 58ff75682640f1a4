#pragma once
// evaluate's outputs: summary.json (nnU-Net's top-level keys plus mlseg's extras),
// metrics_per_case.csv, and the console table. Undefined values: JSON null plus a reason, CSV an
// empty cell plus the reason column, console "n/a (<reason>)" — never "nan".
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "mlseg/evaluation/evaluate.h"

namespace mlseg {

/// summary.json:
///   metric_per_case: [{reference_file, prediction_file, case_id, metrics: {CHANNEL: {nnunet_key,
///                      TP, FP, FN, TN, n_ref, n_pred, Dice, IoU, ..., reason?}}}]
///   mean:            {CHANNEL: {nnunet_key, Dice, IoU, ..., TP, ..., reasons?}}  (over cases)
///   foreground_mean: {Dice, IoU, ..., reasons?}                                  (over channels)
///   mlseg:           settings, case counts, foreground_mean_n_channels, per metric aggregates
///                    (mean, median, std, min, max, n_values, n_defined, n_substituted,
///                    n_undefined by reason), pooled metrics from summed counts.
nlohmann::ordered_json evaluation_to_json(const EvaluationResult& result);

/// One row per case and channel: case_id, channel, nnunet_key, reference_file, prediction_file,
/// reason, TP, FP, FN, TN, n_ref, n_pred, then the selected metrics (empty cell when undefined).
std::string evaluation_to_csv(const EvaluationResult& result);

/// Console report: per channel and metric mean/median/std/min/max/n/n-a, pooled Dice, foreground mean.
std::string format_evaluation_report(const EvaluationResult& result);

/// Writes summary.json at `summary_path` and metrics_per_case.csv next to it, each atomically.
void write_evaluation_outputs(const EvaluationResult& result, const std::filesystem::path& summary_path);

}  // namespace mlseg
