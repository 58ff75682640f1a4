#pragma once
// detail: raw access to a code view's words for the counting loops (not part of the public API).
#include <cstdint>
#include <stdexcept>

#include "mlseg/labels/code_array.h"

namespace mlseg::detail {

/// Calls fn(Word{}) with the unsigned C++ type of one code word of `code`.
template <typename Function>
decltype(auto) with_code_word_type(const CodeView& code, Function&& fn) {
  return with_code_word(code.word, std::forward<Function>(fn));
}

/// Word w of every voxel.
template <typename Word>
const Word* code_word_plane(const CodeView& code, int w) {
  return code.plane<Word>(w);
}

/// Mask of the low `channels_here` bits of a code word (all bits when the word is full).
template <typename Word>
Word low_bits_mask(int channels_here) {
  return channels_here >= static_cast<int>(8 * sizeof(Word)) ? static_cast<Word>(~Word{0})
                                                             : static_cast<Word>((Word{1} << channels_here) - 1);
}

inline int count_trailing_zeros(std::uint64_t bits) { return __builtin_ctzll(bits); }

}  // namespace mlseg::detail
