#pragma once
// How `mlseg predict` fits a case into memory (--memory-budget-gb): the whole-volume path (all
// logits as float32 at the preprocessed resolution, then all probabilities at the original one)
// when its estimated peak fits the budget and the slab path would not save kSlabsPreferredSavingGb
// of it, else the slab path (slab_prediction.h), which holds one tile's depth of logits and the
// case's channel code.
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
/// Within the budget the slab path is still taken when its estimated peak is at least this much
/// below the whole volume's: the whole-volume path spends the difference faulting in logits and
/// probabilities (bench/memory, 512 x 512 x 32 CT, 117 channels, one row of tiles either way:
/// slabs 5.1 GB and 13 s against 11.2 GB and 21 s for the whole volume). On small cases, and on
/// BraTS-sized ones with a few channels, the slab path's chunk buffers make it the larger one.
inline constexpr double kSlabsPreferredSavingGb = 2.0;

enum class PredictStrategy { whole_volume, slabs };
std::string to_string(PredictStrategy strategy);

struct CaseMemoryPlan {
  PredictStrategy strategy = PredictStrategy::whole_volume;
  double whole_volume_gb = 0;  ///< estimated peak of the whole-volume path
  double slabs_gb = 0;         ///< estimated peak of the slab path
  double budget_gb = 0;        ///< the budget used (auto resolved)
  bool budget_is_auto = false;
  /// Why this path: "fits the budget", "over the budget", "slabs save N GB".
  std::string reason;
  double estimated_peak_gb() const { return strategy == PredictStrategy::slabs ? slabs_gb : whole_volume_gb; }
  /// One line: the strategy, the estimates and the budget.
  std::string describe() const;
};

/// The memory available to a new allocation (Linux MemAvailable) in GB; 0 when unknown.
double available_memory_gb();

/// Estimates both paths' peaks for a preprocessed case (`properties`) predicted with `model`'s
/// tile `patch_size` and exported with `export_options`, and picks the path: slabs when the whole
/// volume is over `budget_gb` (<= 0: auto), or when slabs save at least kSlabsPreferredSavingGb
/// and can write what was asked; else the whole volume. Throws mlseg::Error when the slab path cannot write
/// what was asked within the budget (a multihot4d volume larger than the budget, probabilities
/// in NIfTI), naming the fix.
CaseMemoryPlan plan_case_memory(const CaseProperties& properties, const ModelDescription& model, const std::vector<std::int64_t>& patch_size,
                                const ExportOptions& export_options, double budget_gb);

}  // namespace mlseg
