#include "mlseg/inference/memory_plan.h"

#include <c10/core/ScalarType.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "mlseg/core/error.h"
#include "mlseg/inference/slab_prediction.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {
namespace {

double volume_of(const std::array<std::int64_t, 3>& shape) {
  return static_cast<double>(shape[0]) * static_cast<double>(shape[1]) * static_cast<double>(shape[2]);
}

// The process itself: libtorch, the networks, the allocator's slack.
constexpr double kBaseBytes = 0.5e9;
// Copies of a handed-over chunk alive at once in the slab path (the divided rows, in-plane
// resampled, held, interpolated, probabilities, uncropped).
constexpr double kChunkCopies = 6;

std::string gb(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f GB", value);
  return text;
}

}  // namespace

std::string to_string(PredictStrategy strategy) { return strategy == PredictStrategy::slabs ? "z slabs" : "whole volume"; }

std::string CaseMemoryPlan::describe() const {
  std::ostringstream out;
  out << to_string(strategy) << ", estimated peak " << gb(estimated_peak_gb()) << " (whole volume " << gb(whole_volume_gb)
      << ", z slabs " << gb(slabs_gb) << "; budget " << gb(budget_gb)
      << (budget_is_auto ? ": auto, " + std::to_string(static_cast<int>(kAutoBudgetFraction * 100)) + " % of available memory" : "")
      << (reason.empty() ? "" : "; " + reason) << ")";
  if (strategy == PredictStrategy::slabs && slabs_gb > budget_gb) out << " -- over the budget even in slabs";
  return out.str();
}

double available_memory_gb() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024.0 / kBytesPerGb;
  }
  return 0;
}

CaseMemoryPlan plan_case_memory(const CaseProperties& p, const ModelDescription& model, const std::vector<std::int64_t>& patch_size,
                                const ExportOptions& export_options, double budget_gb) {
  CaseMemoryPlan plan;
  plan.budget_is_auto = budget_gb <= 0;
  plan.budget_gb = plan.budget_is_auto ? kAutoBudgetFraction * available_memory_gb() : budget_gb;
  const double original = volume_of(p.original_shape_zyx), preprocessed = volume_of(p.shape_after_resample);
  const double outputs = model.encoding.num_outputs(), channels = model.encoding.num_channels();
  const CodeLayout layout = code_layout(model.encoding.num_channels());
  const double code_bytes = static_cast<double>(layout.num_words) * static_cast<double>(c10::elementSize(layout.dtype));
  double export_bytes = 0;
  switch (export_options.format) {
    case PredictionFormat::labelmap: export_bytes = 9 * original; break;        // int64 map, then its narrow copy
    case PredictionFormat::bitmask: export_bytes = 16 * original; break;        // int64 word, then its narrow copy
    case PredictionFormat::per_channel: export_bytes = 2 * original; break;     // one channel's mask
    case PredictionFormat::multihot4d: export_bytes = channels * original; break;
  }
  const double images = 4.0 * static_cast<double>(model.input_channels) * (original + preprocessed);
  const double common = kBaseBytes + images + code_bytes * original + export_bytes;
  // Logits and weights at the preprocessed resolution, then probabilities at the original one
  // (resampled, uncropped, transposed back: two such volumes at once besides the logits).
  plan.whole_volume_gb = (common + 4.0 * outputs * preprocessed + 4.0 * preprocessed + 8.0 * outputs * original) / kBytesPerGb;
  const double tile_rows = patch_size.size() == 3 ? static_cast<double>(patch_size[0]) : 1.0;
  const double tile_plane = static_cast<double>(patch_size[patch_size.size() - 2] * patch_size.back());
  const double plane = std::max(static_cast<double>(p.shape_after_resample[1] * p.shape_after_resample[2]), tile_plane);
  plan.slabs_gb = (common + 4.0 * (outputs + 1) * tile_rows * plane + kChunkCopies * static_cast<double>(kSlabChunkBytes)) / kBytesPerGb;
  const bool slabs_write_it = !(export_options.save_probabilities && export_options.probabilities_format == ProbabilitiesFormat::nifti) &&
                              !(export_options.format == PredictionFormat::multihot4d && export_bytes / kBytesPerGb > plan.budget_gb);
  if (plan.whole_volume_gb > plan.budget_gb) {
    plan.strategy = PredictStrategy::slabs;
    plan.reason = "the whole volume is over the budget";
  } else if (slabs_write_it && plan.whole_volume_gb - plan.slabs_gb >= kSlabsPreferredSavingGb) {
    plan.strategy = PredictStrategy::slabs;
    plan.reason = "slabs save " + gb(plan.whole_volume_gb - plan.slabs_gb);
  } else {
    plan.strategy = PredictStrategy::whole_volume;
    plan.reason = "the whole volume fits the budget";
  }
  if (plan.whole_volume_gb > plan.budget_gb) {
    const std::string why = "the whole-volume path needs ~" + gb(plan.whole_volume_gb) + ", over the memory budget of " + gb(plan.budget_gb);
    if (export_options.save_probabilities && export_options.probabilities_format == ProbabilitiesFormat::nifti) {
      throw Error(why + ", and the slab path writes probabilities only as npy",
                  "use --probabilities-format npy (written chunk by chunk), or raise --memory-budget-gb", {"", p.case_id, ""});
    }
    if (export_options.format == PredictionFormat::multihot4d && export_bytes / kBytesPerGb > plan.budget_gb) {
      throw Error(why + ", and the multihot4d volume alone (" + gb(export_bytes / kBytesPerGb) + ") does not fit either",
                  "use --format per-channel (one file per channel, written one at a time) or raise --memory-budget-gb",
                  {"", p.case_id, ""});
    }
  }
  return plan;
}

}  // namespace mlseg
