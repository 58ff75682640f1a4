#pragma once
// PatchSampler: where each training patch of a batch is cut (case, lower corner), nnU-Net's data
// loader logic (get_bbox) with per-channel weighting options for rare, overlapping structures.
//
// Deterministic: sample_batch(i) depends only on (seed, i), never on call order or thread, so
// any number of loader workers produces the same sequence of batches.
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "mlseg/data/sampler_options.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

class PreprocessedStore;

/// One sample of a batch.
struct PatchDraw {
  std::size_t case_index = 0;  ///< index in the store's case list
  PatchShapeZyx begin_zyx{};   ///< lower corner (may be negative: padded)
  bool forced = false;         ///< the batch slot asked for foreground
  /// Index into the case's CaseProperties::locations the patch was centred on; -1: random crop
  /// (not forced, or forced in a case without any foreground).
  int forced_group = -1;
  int forced_channel = -1;     ///< the group's channel; -1 for a combination or none
  PatchShapeZyx location_zyx{-1, -1, -1};  ///< the stored location it was centred on; -1: none
};

/// nnU-Net's get_bbox bounds for the lower corner along each axis: [lower, upper] inclusive.
struct CornerBounds {
  PatchShapeZyx lower{}, upper{};
};

class PatchSampler {
 public:
  /// `case_indices`: the store cases to draw from (a fold's training cases); empty = all.
  /// Opens every listed case (CASE.json + locations). Throws mlseg::Error for inconsistent
  /// options (weights missing or of the wrong length, negative, all zero).
  PatchSampler(const PreprocessedStore& store, SamplerOptions options, std::vector<std::size_t> case_indices = {});

  const SamplerOptions& options() const { return options_; }
  const std::vector<std::size_t>& case_indices() const { return case_indices_; }
  /// Probability of each entry of case_indices() for case-first draws.
  const std::vector<double>& case_probabilities() const { return case_probabilities_; }

  /// nnU-Net: sample j is forced iff j >= round(batch_size * (1 - foreground_oversample)).
  bool is_forced(std::int64_t sample_in_batch) const;
  std::int64_t forced_per_batch() const;
  /// Share of patches that are forced onto foreground (forced_per_batch / batch_size).
  double forced_fraction() const;

  /// Lower-corner bounds for a case of this shape (patch may extend past the borders).
  CornerBounds corner_bounds(const PatchShapeZyx& case_shape_zyx) const;

  std::vector<PatchDraw> sample_batch(std::int64_t batch_index) const;
  PatchDraw sample(std::int64_t batch_index, std::int64_t sample_in_batch) const;

 private:
  const PreprocessedStore& store_;
  SamplerOptions options_;
  std::vector<std::size_t> case_indices_;
  std::vector<double> case_probabilities_;
  std::vector<double> case_cumulative_;  ///< for weighted case draws
  // Channel-first draws (weighted forced modes): cumulative weights over channels_with_cases_.
  std::vector<int> channels_with_cases_;
  std::vector<double> channel_cumulative_;
  std::vector<std::vector<std::size_t>> cases_of_channel_;  ///< positions in case_indices_, per channel
  std::int64_t first_forced_ = 0;
};

/// Per channel: whether any voxel of the patch carries it (the ignore flag is not a channel).
std::vector<bool> count_channels_in_patch(const CodeVolume& patch_codes);

/// What an epoch's patches contained, counted from the cut codes.
struct SamplingReport {
  std::vector<std::string> channel_names;
  std::int64_t patches = 0;
  std::int64_t forced_patches = 0;
  /// Forced slots whose case had no foreground location (random crop instead).
  std::int64_t forced_without_foreground = 0;
  std::int64_t forced_on_combination = 0;
  std::vector<std::int64_t> patches_with_channel;  ///< patches containing channel c anywhere
  std::vector<std::int64_t> forced_on_channel;     ///< forced patches centred on channel c's location

  /// patches_with_channel[c] / patches (0 when no patches).
  double channel_share(int channel) const;
};

/// Accumulates a SamplingReport; add() may be called from several threads.
class SamplingReportAccumulator {
 public:
  explicit SamplingReportAccumulator(std::vector<std::string> channel_names);
  void add(const CodeVolume& patch_codes, const PatchDraw& draw);
  SamplingReport report() const;
  void reset();

 private:
  mutable std::mutex mutex_;
  SamplingReport report_;
};

}  // namespace mlseg
