#pragma once
// How `mlseg predict` fits a case into memory (--memory-budget-gb): the whole-volume path (all
// logits as float32 at the preprocessed resolution, then all probabilities at the original one:
// fastest) when its estimated peak fits the budget, else the slab path (slab_prediction.h), which
// holds one tile's depth of logits and the case's channel code.
#include <cstdint>
#include <string>
#include <vector>

#include "mlseg/inference/export_prediction.h"
#include "mlseg/io/store_layout.h"

namespace mlseg {

/// --memory-budget-gb of `mlseg predict`: 0 = auto (kAutoBudgetFraction of the memory the system
/// reports available, MemAvailable, when the case starts).
inline constexpr double kDefaultMemoryBudgetGb = 0.0;
inline constexpr double kAutoBudgetFraction = 0.8;
/// Bytes per GB in the budget and the estimates (10^9, as /usr/bin/time's kB are near enough).
inline constexpr double kBytesPerGb = 1e9;

enum class PredictStrategy { whole_volume, slabs };
std::string to_string(PredictStrategy strategy);

struct CaseMemoryPlan {
  PredictStrategy strategy = PredictStrategy::whole_volume;
  double whole_volume_gb = 0;  ///< estimated peak of the whole-volume path
  double slabs_gb = 0;         ///< estimated peak of the slab path
  double budget_gb = 0;        ///< the budget used (auto resolved)
  bool budget_is_auto = false;
  double estimated_peak_gb() const { return strategy == PredictStrategy::slabs ? slabs_gb : whole_volume_gb; }
  /// One line: the strategy, the estimates and the budget.
  std::string describe() const;
};

/// The memory available to a new allocation (Linux MemAvailable) in GB; 0 when unknown.
double available_memory_gb();

/// Estimates both paths' peaks for a preprocessed case (`properties`) predicted with `model`'s
/// tile `patch_size` and exported with `export_options`, and picks the path: whole volume when it
/// fits `budget_gb` (<= 0: auto), else slabs. Throws mlseg::Error when the slab path cannot write
/// what was asked within the budget (a multihot4d volume larger than the budget, probabilities
/// in NIfTI), naming the fix.
CaseMemoryPlan plan_case_memory(const CaseProperties& properties, const ModelDescription& model, const std::vector<std::int64_t>& patch_size,
                                const ExportOptions& export_options, double budget_gb);

}  // namespace mlseg
