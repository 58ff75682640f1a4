#include "mlseg/metrics/confusion_counts.h"

#include <stdexcept>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string>

#include "mlseg/metrics/code_words.h"

namespace mlseg {


ConfusionCounts& ConfusionCounts::operator+=(const ConfusionCounts& other) {
  tp += other.tp;
  fp += other.fp;
  fn += other.fn;
  tn += other.tn;
  return *this;
}

bool ConfusionCounts::operator==(const ConfusionCounts& other) const {
  return tp == other.tp && fp == other.fp && fn == other.fn && tn == other.tn;
}

void add_counts(std::vector<ConfusionCounts>& total, const std::vector<ConfusionCounts>& part) {
  if (total.empty()) total.resize(part.size());
  if (total.size() != part.size()) throw std::invalid_argument("add_counts: channel counts differ");
  for (std::size_t c = 0; c < part.size(); ++c) total[c] += part[c];
}

namespace {

// TN from the other three and the number of counted voxels.
void finish_true_negatives(std::vector<ConfusionCounts>& counts, std::int64_t counted_voxels) {
  for (auto& c : counts) c.tn = counted_voxels - c.tp - c.fp - c.fn;
}

constexpr int kPairHistogramMaxChannels = 4;

std::vector<ConfusionCounts> count_confusion_pair_histogram(const CodeView& pred, const CodeView& ref,
                                                            const std::uint8_t* extra_flags, std::int64_t voxels) {
  const int num_channels = ref.num_channels;
  const std::uint8_t* p = static_cast<const std::uint8_t*>(pred.words);
  const std::uint8_t* r = static_cast<const std::uint8_t*>(ref.words);
  const std::uint8_t channel_bits = static_cast<std::uint8_t>((1u << num_channels) - 1);
  const std::uint8_t ignore_bit = static_cast<std::uint8_t>(1u << num_channels);
  // Bin 256 counts ignored voxels; bins 0..255 are (pred code << 4) | ref code.
  constexpr int kBins = 257;
  std::vector<std::int64_t> histogram(4 * kBins, 0);
  const auto bin = [&](std::int64_t v) -> int {
    if ((r[v] & ignore_bit) || (extra_flags && extra_flags[v])) return 256;
    return ((p[v] & channel_bits) << 4) | (r[v] & channel_bits);
  };
  std::int64_t v = 0;
  for (; v + 4 <= voxels; v += 4) {
    ++histogram[bin(v)];
    ++histogram[kBins + bin(v + 1)];
    ++histogram[2 * kBins + bin(v + 2)];
    ++histogram[3 * kBins + bin(v + 3)];
  }
  for (; v < voxels; ++v) ++histogram[bin(v)];
  std::vector<ConfusionCounts> counts(static_cast<std::size_t>(num_channels));
  std::int64_t ignored = 0;
  for (int copy = 0; copy < 4; ++copy) {
    const std::int64_t* h = histogram.data() + copy * kBins;
    ignored += h[256];
    for (int pair = 1; pair < 256; ++pair) {
      if (!h[pair]) continue;
      const int pred_code = pair >> 4, ref_code = pair & 15;
      for (int c = 0; c < num_channels; ++c) {
        const bool in_pred = (pred_code >> c) & 1, in_ref = (ref_code >> c) & 1;
        if (in_pred && in_ref) counts[c].tp += h[pair];
        else if (in_pred) counts[c].fp += h[pair];
        else if (in_ref) counts[c].fn += h[pair];
      }
    }
  }
  finish_true_negatives(counts, voxels - ignored);
  return counts;
}

// Up to 7 channels (one byte per code) and no extra ignore mask: histogram of (pred, ref) byte
// pairs, accumulated per run. Run boundaries — where either volume changes — are found 16 voxels
// at a time with SIMD, so the work follows the number of runs, not the number of voxels.
std::vector<ConfusionCounts> count_confusion_byte_runs(const CodeView& pred, const CodeView& ref,
                                                       std::int64_t voxels) {
  const int num_channels = ref.num_channels;
  const std::uint8_t* p = static_cast<const std::uint8_t*>(pred.words);
  const std::uint8_t* r = static_cast<const std::uint8_t*>(ref.words);
  std::vector<std::int64_t> table(65536, 0);
  if (voxels > 0) {
    auto pair_at = [&](std::int64_t v) { return static_cast<std::uint16_t>((p[v] << 8) | r[v]); };
    std::uint16_t current = pair_at(0);
    std::int64_t run_start = 0;
    std::int64_t v = 1;
#if defined(__SSE2__)
    for (; v + 16 <= voxels; v += 16) {
      const __m128i same_pred = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + v)),
                                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + v - 1)));
      const __m128i same_ref = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + v)),
                                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + v - 1)));
      auto changes = static_cast<std::uint32_t>(~_mm_movemask_epi8(_mm_and_si128(same_pred, same_ref)) & 0xFFFF);
      while (changes) {
        const std::int64_t position = v + __builtin_ctz(changes);
        changes &= changes - 1;
        table[current] += position - run_start;
        current = pair_at(position);
        run_start = position;
      }
    }
#endif
    for (; v < voxels; ++v) {
      const std::uint16_t pair = pair_at(v);
      if (pair != current) {
        table[current] += v - run_start;
        current = pair;
        run_start = v;
      }
    }
    table[current] += voxels - run_start;
  }
  const unsigned ignore_bit = 1u << num_channels, channel_bits = ignore_bit - 1;
  std::vector<ConfusionCounts> counts(static_cast<std::size_t>(num_channels));
  std::int64_t ignored = 0;
  for (unsigned pair = 0; pair < 65536; ++pair) {
    const std::int64_t n = table[pair];
    if (!n) continue;
    const unsigned pred_code = (pair >> 8) & channel_bits, ref_code = pair & 0xFF;
    if (ref_code & ignore_bit) {
      ignored += n;
      continue;
    }
    for (int c = 0; c < num_channels; ++c) {
      const bool in_pred = (pred_code >> c) & 1, in_ref = (ref_code >> c) & 1;
      if (in_pred && in_ref) counts[c].tp += n;
      else if (in_pred) counts[c].fp += n;
      else if (in_ref) counts[c].fn += n;
    }
  }
  finish_true_negatives(counts, voxels - ignored);
  return counts;
}

}  // namespace

std::vector<ConfusionCounts> count_confusion(const CodeView& pred, const CodeView& ref,
                                             const std::uint8_t* extra_flags) {
  if (pred.num_channels != ref.num_channels || pred.shape_zyx != ref.shape_zyx || pred.word != ref.word ||
      pred.num_words != ref.num_words) {
    throw std::invalid_argument("count_confusion: prediction and reference differ in channels or shape");
  }
  const int num_channels = ref.num_channels;
  const CodeWordLayout layout = code_word_layout(num_channels);
  const std::int64_t voxels = ref.voxels();

  // Few channels (the common case: BraTS's 3 regions): a histogram of (pred, ref) code pairs,
  // four interleaved copies so that long runs of one code do not serialise on one counter.
  if (layout.word == CodeWord::u8 && extra_flags == nullptr) {
    return count_confusion_byte_runs(pred, ref, voxels);
  }
  if (layout.num_words == 1 && num_channels <= kPairHistogramMaxChannels) {
    return count_confusion_pair_histogram(pred, ref, extra_flags, voxels);
  }
  std::vector<std::int64_t> tp(num_channels, 0), fp(num_channels, 0), fn(num_channels, 0);
  std::int64_t counted = voxels;
  detail::with_code_word_type(ref, [&](auto tag) {
    using Word = decltype(tag);
    const int ignore_word = num_channels / layout.bits_per_word;
    const Word ignore_bit = static_cast<Word>(Word{1} << (num_channels % layout.bits_per_word));
    const Word* ref_ignore = detail::code_word_plane<Word>(ref, ignore_word);
    // Excluded voxels: the reference's ignore flag or the extra mask.
    std::vector<std::uint8_t> excluded;
    const std::uint8_t* excluded_flags = extra_flags;
    if (layout.num_words > 1) {
      excluded.assign(static_cast<std::size_t>(voxels), 0);
      for (std::int64_t v = 0; v < voxels; ++v) {
        excluded[v] = static_cast<std::uint8_t>(((ref_ignore[v] & ignore_bit) != 0) || (extra_flags && extra_flags[v]));
      }
      excluded_flags = excluded.data();
    }
    for (int w = 0; w < layout.num_words; ++w) {
      const Word* p_words = detail::code_word_plane<Word>(pred, w);
      const Word* r_words = detail::code_word_plane<Word>(ref, w);
      const int first_channel = w * layout.bits_per_word;
      const int channels_here = std::min(layout.bits_per_word, num_channels - first_channel);
      if (channels_here <= 0) continue;
      const Word channel_bits = detail::low_bits_mask<Word>(channels_here);
      std::int64_t* tp_w = tp.data() + first_channel;
      std::int64_t* fp_w = fp.data() + first_channel;
      std::int64_t* fn_w = fn.data() + first_channel;
      std::int64_t skipped = 0;
      const bool single_word_ignore = layout.num_words == 1;
      for (std::int64_t v = 0; v < voxels; ++v) {
        const Word r_raw = r_words[v];
        if (single_word_ignore ? ((r_raw & ignore_bit) != 0 || (excluded_flags && excluded_flags[v]))
                               : excluded_flags[v] != 0) {
          ++skipped;
          continue;
        }
        const Word p = static_cast<Word>(p_words[v] & channel_bits);
        const Word r = static_cast<Word>(r_raw & channel_bits);
        if ((p | r) == 0) continue;
        std::uint64_t both = static_cast<std::uint64_t>(p & r);
        std::uint64_t only_pred = static_cast<std::uint64_t>(p & static_cast<Word>(~r));
        std::uint64_t only_ref = static_cast<std::uint64_t>(r & static_cast<Word>(~p));
        for (; both; both &= both - 1) ++tp_w[detail::count_trailing_zeros(both)];
        for (; only_pred; only_pred &= only_pred - 1) ++fp_w[detail::count_trailing_zeros(only_pred)];
        for (; only_ref; only_ref &= only_ref - 1) ++fn_w[detail::count_trailing_zeros(only_ref)];
      }
      if (w == 0) counted = voxels - skipped;
    }
  });
  std::vector<ConfusionCounts> counts(num_channels);
  for (int c = 0; c < num_channels; ++c) counts[c] = {tp[c], fp[c], fn[c], 0};
  finish_true_negatives(counts, counted);
  return counts;
}

std::vector<ConfusionCounts> count_confusion_flags(const std::uint8_t* pred, const std::uint8_t* ref,
                                                   std::int64_t channels, std::int64_t voxels,
                                                   const std::uint8_t* excluded) {
  std::int64_t counted = voxels;
  if (excluded) {
    counted = 0;
    for (std::int64_t v = 0; v < voxels; ++v) counted += excluded[v] == 0;
  }
  std::vector<ConfusionCounts> counts(static_cast<std::size_t>(channels));
  for (std::int64_t c = 0; c < channels; ++c) {
    const std::uint8_t* p = pred + c * voxels;
    const std::uint8_t* r = ref + c * voxels;
    std::int64_t tp = 0, fp = 0, fn = 0;
    for (std::int64_t v = 0; v < voxels; ++v) {
      if (excluded && excluded[v]) continue;
      tp += p[v] & r[v];
      fp += p[v] & (r[v] ^ 1);
      fn += (p[v] ^ 1) & r[v];
    }
    counts[c] = {tp, fp, fn, 0};
  }
  finish_true_negatives(counts, counted);
  return counts;
}

}  // namespace mlseg
