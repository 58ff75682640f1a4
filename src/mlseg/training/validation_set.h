#pragma once
// The fixed validation patch set (ARCHITECTURE.md "Validation"): built once per run from the
// fold's validation cases, deterministically from the seed, stratified so that every channel
// (and every rare combination the store keeps locations for) present in those cases lies in at
// least `min_patches_per_channel` patches, then topped up with nnU-Net-style draws (a third of
// them forced onto foreground) to `iterations × batch_size` patches. The same patches are scored
// every epoch, so epochs are comparable and a rare channel can never drop out of validation.
#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mlseg/data/sampler_options.h"

namespace mlseg {

class PreprocessedStore;

/// nnU-Net's num_val_iterations_per_epoch.
inline constexpr std::int64_t kDefaultValidationIterations = 50;
/// --val-min-patches-per-channel.
inline constexpr std::int64_t kDefaultMinPatchesPerChannel = 5;
/// --val-iterations auto never goes above this many batches.
inline constexpr std::int64_t kMaxAutoValidationIterations = 2000;

struct ValidationSetOptions {
  ValidationSetOptions(std::int64_t batch_size, PatchShapeZyx patch_size_zyx)
      : batch_size_(batch_size), patch_size_zyx_(patch_size_zyx) {}
  TORCH_ARG(std::int64_t, batch_size);
  /// The network's patch (no augmentation margin: validation patches are not augmented).
  TORCH_ARG(PatchShapeZyx, patch_size_zyx);
  /// Batches per validation pass (--val-iterations).
  TORCH_ARG(std::int64_t, iterations) = kDefaultValidationIterations;
  /// --val-iterations auto: raise the number of batches until every channel present in the
  /// validation cases has min_patches_per_channel targeted patches.
  TORCH_ARG(bool, auto_iterations) = false;
  TORCH_ARG(std::int64_t, min_patches_per_channel) = kDefaultMinPatchesPerChannel;
  /// Share of the top-up draws forced onto foreground (nnU-Net's oversample_foreground_percent).
  TORCH_ARG(double, foreground_oversample) = 0.33;
  TORCH_ARG(std::uint64_t, seed) = 12345;
};

/// One patch of the set.
struct ValidationPatch {
  std::size_t case_index = 0;  ///< index in the store
  PatchShapeZyx begin_zyx{};
  /// Why it is in the set: "channel <name>", "combination <name>", "foreground" or "random".
  std::string purpose;
};

/// What the validation cases and patches contain, per channel (the coverage table).
struct ValidationCoverage {
  std::vector<std::string> channel_names;
  std::int64_t validation_cases = 0;
  std::vector<std::int64_t> cases_with_channel;     ///< validation cases containing channel c
  std::vector<std::int64_t> patches_with_channel;   ///< set patches containing channel c anywhere
  std::vector<std::int64_t> targeted_patches;       ///< patches centred on channel c's locations
  /// Combinations with stored locations (rare ones) in the validation cases, and their patches.
  std::vector<std::string> combination_names;
  std::vector<std::int64_t> combination_patches;

  bool present(int channel) const { return cases_with_channel[static_cast<std::size_t>(channel)] > 0; }
};

struct ValidationSet {
  std::vector<ValidationPatch> patches;
  ValidationCoverage coverage;
  std::int64_t batch_size = 1;
  PatchShapeZyx patch_size_zyx{};  ///< every patch's size (the network's patch)
  std::int64_t iterations = 0;  ///< batches per pass (the last one may be short)
  /// The budget (iterations × batch) could not give every present channel its minimum; only
  /// without --val-iterations auto.
  bool coverage_short = false;
};

/// Builds the set from the store cases `validation_cases` (indices into the store). Cuts every
/// patch's codes once to count coverage. Throws mlseg::Error when there is no validation case.
ValidationSet build_validation_set(const PreprocessedStore& store, const std::vector<std::size_t>& validation_cases,
                                   const ValidationSetOptions& options);

/// The coverage table printed at the start of training, with a loud warning naming the fix for
/// each channel absent from the validation cases.
std::string format_coverage_table(const ValidationSet& set, const std::string& fold_name);

}  // namespace mlseg
