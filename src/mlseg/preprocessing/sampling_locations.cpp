#include "mlseg/preprocessing/sampling_locations.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "mlseg/core/content_hash.h"
#include "mlseg/core/random.h"
#include "mlseg/preprocessing/code_words64.h"

namespace mlseg {
namespace {

/// Knuth's selection sampling: keeps exactly `keep` of `total` candidates, each subset equally likely.
struct Selector {
  SplitMix64 random{0};
  std::int64_t remaining = 0;  ///< candidates not yet seen
  std::int64_t needed = 0;     ///< still to select
  std::vector<std::int32_t> rows;
  bool take() {
    const bool selected = needed > 0 && static_cast<double>(remaining) * random.uniform() < static_cast<double>(needed);
    --remaining;
    if (selected) --needed;
    return selected;
  }
};

}  // namespace

std::int64_t locations_to_keep(std::int64_t voxels, const LocationOptions& options) {
  const auto at_least = static_cast<std::int64_t>(std::ceil(options.min_fraction * static_cast<double>(voxels)));
  return std::min(voxels, std::max(std::min(options.max_per_group, voxels), at_least));
}

CaseLocations sample_locations(const CodeVolume& code, const std::vector<std::string>& channel_names,
                               const std::vector<CombinationTarget>& combinations, const std::string& case_id,
                               const LocationOptions& options) {
  const int num_channels = code.num_channels;
  const auto words64 = code_words_as_uint64(code);
  const int64_t num_words = words64.size(0), voxels = words64.size(1);
  const auto* words = reinterpret_cast<const std::uint64_t*>(words64.data_ptr<int64_t>());
  const auto shape = code.shape_zyx();
  const int ignore_word = num_channels / 64, ignore_bit = num_channels % 64;

  std::map<std::vector<std::uint64_t>, size_t> combination_index;
  for (size_t k = 0; k < combinations.size(); ++k) {
    auto key = combinations[k].code_words;
    key.resize(static_cast<size_t>(num_words), 0);
    combination_index.emplace(key, k);
  }

  // Pass 1: counts per channel and per target combination.
  std::vector<std::int64_t> channel_counts(static_cast<size_t>(num_channels) + 1, 0);
  std::vector<std::int64_t> combination_counts(combinations.size(), 0);
  std::vector<std::uint64_t> voxel_code(static_cast<size_t>(num_words)), previous_code;
  std::vector<std::int32_t> voxel_combination(combination_index.empty() ? 0 : static_cast<size_t>(voxels), -1);
  std::int32_t previous_combination = -1;
  auto load = [&](int64_t i) {
    bool any = false;
    for (int64_t w = 0; w < num_words; ++w) {
      voxel_code[static_cast<size_t>(w)] = words[w * voxels + i];
      any |= voxel_code[static_cast<size_t>(w)] != 0;
    }
    return any;
  };
  auto ignored = [&]() { return ((voxel_code[static_cast<size_t>(ignore_word)] >> ignore_bit) & 1u) != 0; };
  for (int64_t i = 0; i < voxels; ++i) {
    if (!load(i)) continue;
    if (ignored()) {
      ++channel_counts[static_cast<size_t>(num_channels)];
      continue;
    }
    for (int64_t w = 0; w < num_words; ++w) {
      for (std::uint64_t bits = voxel_code[static_cast<size_t>(w)]; bits != 0; bits &= bits - 1) {
        ++channel_counts[static_cast<size_t>(w * 64 + __builtin_ctzll(bits))];
      }
    }
    if (!combination_index.empty()) {
      if (voxel_code != previous_code) {
        const auto found = combination_index.find(voxel_code);
        previous_combination = found == combination_index.end() ? -1 : static_cast<std::int32_t>(found->second);
        previous_code = voxel_code;
      }
      voxel_combination[static_cast<size_t>(i)] = previous_combination;
      if (previous_combination >= 0) ++combination_counts[static_cast<size_t>(previous_combination)];
    }
  }

  const std::uint64_t case_seed = options.seed ^ hash_bytes(case_id.data(), case_id.size());
  std::vector<Selector> channel_selectors(static_cast<size_t>(num_channels));
  for (int c = 0; c < num_channels; ++c) {
    auto& s = channel_selectors[static_cast<size_t>(c)];
    s.random = SplitMix64(case_seed + 0x100000000ULL * static_cast<std::uint64_t>(c + 1));
    s.remaining = channel_counts[static_cast<size_t>(c)];
    s.needed = locations_to_keep(s.remaining, options);
    s.rows.reserve(static_cast<size_t>(s.needed) * 3);
  }
  std::vector<Selector> combination_selectors(combinations.size());
  for (size_t k = 0; k < combinations.size(); ++k) {
    auto& s = combination_selectors[k];
    s.random = SplitMix64(case_seed ^ (0xc0ffee00000000ULL + k));
    s.remaining = combination_counts[k];
    s.needed = locations_to_keep(s.remaining, options);
    s.rows.reserve(static_cast<size_t>(s.needed) * 3);
  }

  // Pass 2: select.
  auto append = [&](Selector& s, int64_t i) {
    const int64_t x = i % shape[2], y = (i / shape[2]) % shape[1], z = i / (shape[1] * shape[2]);
    s.rows.push_back(static_cast<std::int32_t>(z));
    s.rows.push_back(static_cast<std::int32_t>(y));
    s.rows.push_back(static_cast<std::int32_t>(x));
  };
  for (int64_t i = 0; i < voxels; ++i) {
    if (!load(i) || ignored()) continue;
    for (int64_t w = 0; w < num_words; ++w) {
      for (std::uint64_t bits = voxel_code[static_cast<size_t>(w)]; bits != 0; bits &= bits - 1) {
        auto& s = channel_selectors[static_cast<size_t>(w * 64 + __builtin_ctzll(bits))];
        if (s.take()) append(s, i);
      }
    }
    if (!combination_index.empty()) {
      const std::int32_t k = voxel_combination[static_cast<size_t>(i)];
      if (k >= 0 && combination_selectors[static_cast<size_t>(k)].take()) append(combination_selectors[static_cast<size_t>(k)], i);
    }
  }

  CaseLocations result;
  result.channel_voxels = channel_counts;
  std::vector<std::int32_t> all_rows;
  for (int c = 0; c < num_channels; ++c) {
    const auto& s = channel_selectors[static_cast<size_t>(c)];
    if (channel_counts[static_cast<size_t>(c)] == 0) continue;
    LocationGroup group;
    group.kind = "channel";
    group.name = c < static_cast<int>(channel_names.size()) ? channel_names[static_cast<size_t>(c)] : std::to_string(c);
    group.channel = c;
    group.voxels = channel_counts[static_cast<size_t>(c)];
    group.offset = static_cast<int64_t>(all_rows.size() / 3);
    group.count = static_cast<int64_t>(s.rows.size() / 3);
    all_rows.insert(all_rows.end(), s.rows.begin(), s.rows.end());
    result.groups.push_back(std::move(group));
  }
  for (size_t k = 0; k < combinations.size(); ++k) {
    if (combination_counts[k] == 0) continue;
    const auto& s = combination_selectors[k];
    LocationGroup group;
    group.kind = "combination";
    group.name = combinations[k].name.empty() ? combination_name(combinations[k].code_words, channel_names) : combinations[k].name;
    group.code_words = combinations[k].code_words;
    group.rare = combinations[k].rare;
    group.voxels = combination_counts[k];
    group.offset = static_cast<int64_t>(all_rows.size() / 3);
    group.count = static_cast<int64_t>(s.rows.size() / 3);
    all_rows.insert(all_rows.end(), s.rows.begin(), s.rows.end());
    result.groups.push_back(std::move(group));
  }
  const auto num_rows = static_cast<int64_t>(all_rows.size() / 3);
  result.rows = torch::empty({num_rows, 3}, torch::kInt);
  if (num_rows > 0) std::copy(all_rows.begin(), all_rows.end(), result.rows.data_ptr<std::int32_t>());
  return result;
}

}  // namespace mlseg
