#pragma once
// Sampling locations (nnU-Net's class_locations, default_preprocessor.py:170-276): for each
// channel, and for each chosen combination (rare ones), a seeded random subset of its voxels,
// so the sampler can centre a forced patch on it without scanning the case.
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mlseg/io/store_layout.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

struct LocationOptions {
  std::int64_t max_per_group = 10000;  ///< nnU-Net keeps min(10000, n) ...
  double min_fraction = 0.01;          ///< ... but at least ceil(0.01 n) of a class's n voxels
  std::uint64_t seed = 1234;           ///< nnU-Net's seed; mixed with the case id per case
};

/// max(min(max_per_group, n), ceil(min_fraction * n)), never more than n.
std::int64_t locations_to_keep(std::int64_t voxels, const LocationOptions& options = {});

/// A combination to store locations for (exact code, ignore bit excluded).
struct CombinationTarget {
  std::vector<std::uint64_t> code_words;
  std::string name;
  bool rare = true;
};

struct CaseLocations {
  std::vector<LocationGroup> groups;       ///< channels first (only those present), then combinations present
  torch::Tensor rows;                       ///< int32 [N, 3] (z, y, x), groups' rows in order
  std::vector<std::int64_t> channel_voxels;  ///< per channel (non-ignored voxels), then ignored voxels
};

/// Uniform sampling without replacement (selection sampling), deterministic for (seed, case_id),
/// in one pass per group kind; ignore-flagged voxels are never locations.
CaseLocations sample_locations(const CodeVolume& code, const std::vector<std::string>& channel_names,
                               const std::vector<CombinationTarget>& combinations, const std::string& case_id,
                               const LocationOptions& options = {});

}  // namespace mlseg
