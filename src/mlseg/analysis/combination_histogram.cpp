#include "mlseg/analysis/combination_histogram.h"

#include <unordered_map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mlseg {

void CombinationHistogram::merge(const CombinationHistogram& other) {
  if (num_channels == 0) num_channels = other.num_channels;
  for (const auto& [key, count] : other.voxels) voxels[key] += count;
}

std::int64_t CombinationHistogram::total_voxels() const {
  std::int64_t total = 0;
  for (const auto& [key, count] : voxels) total += count;
  return total;
}

void count_codes_dense16(const std::uint16_t* codes, std::int64_t count, std::int64_t* table) {
  if (count == 0) return;
  // Run-length accumulation: only run boundaries touch the table. Boundaries are found 32 voxels
  // at a time by comparing each voxel with its left neighbour (SIMD), then visited bit by bit, so
  // the cost follows the number of runs, not branchy per-voxel work.
  std::uint16_t current = codes[0];
  std::int64_t run_start = 0;
  std::int64_t i = 1;
#if defined(__SSE2__)
  for (; i + 32 <= count; i += 32) {
    std::uint64_t changes = 0;
    for (int k = 0; k < 4; ++k) {
      const __m128i now = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i + 8 * k));
      const __m128i before = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i + 8 * k - 1));
      const auto equal = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi16(now, before)));
      changes |= static_cast<std::uint64_t>(~equal & 0xFFFFu) << (16 * k);
    }
    while (changes) {
      const int bit = __builtin_ctzll(changes);
      changes &= changes - 1;
      changes &= changes - 1;  // a 16-bit lane sets two mask bits
      const std::int64_t position = i + bit / 2;
      table[current] += position - run_start;
      current = codes[position];
      run_start = position;
    }
  }
#endif
  for (; i < count; ++i) {
    if (codes[i] != current) {
      table[current] += i - run_start;
      current = codes[i];
      run_start = i;
    }
  }
  table[current] += count - run_start;
}

namespace {

template <typename Word>
void count_dense(const Word* words, std::int64_t count, std::vector<std::int64_t>& table) {
  if (count == 0) return;
  Word current = words[0];
  std::int64_t run_start = 0;
  for (std::int64_t i = 1; i < count; ++i) {
    if (words[i] != current) {
      table[current] += i - run_start;
      current = words[i];
      run_start = i;
    }
  }
  table[current] += count - run_start;
}

template <typename Word>
void count_sparse(const Word* words, std::int64_t count, std::unordered_map<std::uint64_t, std::int64_t>& counts) {
  if (count == 0) return;
  Word current = words[0];
  std::int64_t run_start = 0;
  for (std::int64_t i = 1; i < count; ++i) {
    if (words[i] != current) {
      counts[static_cast<std::uint64_t>(current)] += i - run_start;
      current = words[i];
      run_start = i;
    }
  }
  counts[static_cast<std::uint64_t>(current)] += count - run_start;
}

}  // namespace

CombinationHistogram count_combinations(const CodeVolume& code) {
  CombinationHistogram histogram;
  histogram.num_channels = code.num_channels;
  const CodeLayout layout = code_layout(code.num_channels);
  const torch::Tensor words = code.words.contiguous();
  const std::int64_t voxels = words.size(1) * words.size(2) * words.size(3);
  if (layout.num_words == 1 && layout.bits_per_word <= 16) {
    std::vector<std::int64_t> table(std::size_t{1} << layout.bits_per_word, 0);
    if (layout.dtype == torch::kUInt8) {
      count_dense(words.data_ptr<std::uint8_t>(), voxels, table);
    } else {
      count_codes_dense16(reinterpret_cast<const std::uint16_t*>(words.data_ptr()), voxels, table.data());
    }
    for (std::size_t value = 0; value < table.size(); ++value) {
      if (table[value]) histogram.voxels[{value}] = table[value];
    }
    return histogram;
  }
  if (layout.num_words == 1) {
    std::unordered_map<std::uint64_t, std::int64_t> counts;
    if (layout.dtype == torch::kInt32) {
      count_sparse(reinterpret_cast<const std::uint32_t*>(words.data_ptr()), voxels, counts);
    } else {
      count_sparse(reinterpret_cast<const std::uint64_t*>(words.data_ptr()), voxels, counts);
    }
    for (const auto& [value, count] : counts) histogram.voxels[{value}] = count;
    return histogram;
  }
  // Multi-word codes: run-length over whole keys.
  const auto* base = reinterpret_cast<const std::uint64_t*>(words.data_ptr());
  const int num_words = layout.num_words;
  auto key_at = [&](std::int64_t voxel) {
    CombinationKey key(num_words);
    for (int w = 0; w < num_words; ++w) key[w] = base[w * voxels + voxel];
    return key;
  };
  auto same = [&](std::int64_t a, std::int64_t b) {
    for (int w = 0; w < num_words; ++w) {
      if (base[w * voxels + a] != base[w * voxels + b]) return false;
    }
    return true;
  };
  if (voxels == 0) return histogram;
  std::int64_t run_start = 0;
  for (std::int64_t i = 1; i < voxels; ++i) {
    if (!same(i, run_start)) {
      histogram.voxels[key_at(run_start)] += i - run_start;
      run_start = i;
    }
  }
  histogram.voxels[key_at(run_start)] += voxels - run_start;
  return histogram;
}

std::vector<int> channels_of(const CombinationKey& key, int num_channels) {
  std::vector<int> channels;
  for (std::size_t w = 0; w < key.size(); ++w) {
    std::uint64_t value = key[w];
    while (value) {
      const int bit = static_cast<int>(w * 64) + __builtin_ctzll(value);
      value &= value - 1;
      if (bit < num_channels) channels.push_back(bit);
    }
  }
  return channels;
}

bool has_ignore_flag(const CombinationKey& key, int num_channels) {
  const std::size_t word = static_cast<std::size_t>(num_channels) / 64;
  return word < key.size() && ((key[word] >> (num_channels % 64)) & 1);
}

bool is_background(const CombinationKey& key, int num_channels) {
  return channels_of(key, num_channels).empty() && !has_ignore_flag(key, num_channels);
}

}  // namespace mlseg
