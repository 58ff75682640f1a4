#pragma once
// Combination histogram: how many voxels carry each set of channels (each distinct code value).
//
// A combination is a code value: bit c = channel c (multi-word for more than 63 channels).
// Counting is one pass with run-length accumulation (neighbouring voxels usually share a code)
// into a dense table for codes of at most 16 bits, a hash map otherwise.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mlseg/labels/label_code.h"

namespace mlseg {

/// One combination: W code words (W = 1 up to 63 channels). Bit num_channels is the ignore flag.
using CombinationKey = std::vector<std::uint64_t>;

struct CombinationHistogram {
  int num_channels = 0;
  std::map<CombinationKey, std::int64_t> voxels;  ///< key -> voxel count (only keys that occur)

  void merge(const CombinationHistogram& other);
  std::int64_t total_voxels() const;
};

/// Counts every code value of `code` (all voxels, background and ignore included).
CombinationHistogram count_combinations(const CodeVolume& code);

/// Channel indices set in `key` (ignore flag excluded).
std::vector<int> channels_of(const CombinationKey& key, int num_channels);
bool has_ignore_flag(const CombinationKey& key, int num_channels);
bool is_background(const CombinationKey& key, int num_channels);

/// Raw counting kernel over 16-bit codes, exposed for the benchmark: adds to table[65536].
void count_codes_dense16(const std::uint16_t* codes, std::int64_t count, std::int64_t* table);

}  // namespace mlseg
