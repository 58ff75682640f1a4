#pragma once
// detail: raw access to a CodeVolume's words for the counting loops (not part of the public API).
#include <cstdint>
#include <stdexcept>

#include "mlseg/labels/label_code.h"

namespace mlseg::detail {

/// Calls fn(Word{}) with the unsigned C++ type of one code word of `code`.
template <typename Function>
decltype(auto) with_code_word_type(const CodeVolume& code, Function&& fn) {
  switch (code.words.scalar_type()) {
    case torch::kUInt8: return fn(std::uint8_t{});
    case torch::kInt16: return fn(std::uint16_t{});
    case torch::kInt32: return fn(std::uint32_t{});
    case torch::kInt64: return fn(std::uint64_t{});
    default: throw std::invalid_argument("CodeVolume: unsupported word dtype");
  }
}

/// Word w of every voxel (contiguous [W, Z, Y, X] words required).
template <typename Word>
const Word* code_word_plane(const CodeVolume& code, int w) {
  const std::int64_t voxels = code.words.size(1) * code.words.size(2) * code.words.size(3);
  return reinterpret_cast<const Word*>(code.words.data_ptr()) + static_cast<std::int64_t>(w) * voxels;
}

/// Throws std::invalid_argument unless `code` is a contiguous CPU [W, Z, Y, X] code volume.
void require_code_volume(const CodeVolume& code, const char* what);

/// Mask of the low `channels_here` bits of a code word (all bits when the word is full).
template <typename Word>
Word low_bits_mask(int channels_here) {
  return channels_here >= static_cast<int>(8 * sizeof(Word)) ? static_cast<Word>(~Word{0})
                                                             : static_cast<Word>((Word{1} << channels_here) - 1);
}

inline int count_trailing_zeros(std::uint64_t bits) { return __builtin_ctzll(bits); }

}  // namespace mlseg::detail
