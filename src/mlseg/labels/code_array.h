#pragma once
// Channel codes without LibTorch: the word layout, an owning CodeArray and a non-owning CodeView.
// Every voxel's labels are one bitmask over the dataset's channels: bit c is channel c, bit C
// (C = channel count) the reserved ignore flag. With C + 1 <= 64 bits the code is one unsigned
// integer per voxel of the narrowest type that holds C + 1 bits (8, 16, 32 or 64 bits); above 64
// bits it is W = ceil((C + 1) / 64) 64-bit words per voxel, stored word-major: [W, Z, Y, X].
//
// The reading, encoding and counting code (io, metrics, evaluate) works on these types only, so
// `mlseg evaluate` runs without loading LibTorch. The tensor pipeline keeps CodeVolume
// (label_code.h), which converts to a CodeView and wraps a CodeArray without copying.
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "mlseg/core/shared_buffer.h"
#include "mlseg/labels/label_spec.h"

namespace mlseg {

enum class CodeWord { u8, u16, u32, u64 };

int code_word_bytes(CodeWord word);

/// Word type and word count for codes of `num_channels` channels plus the ignore flag.
struct CodeWordLayout {
  CodeWord word = CodeWord::u8;
  int num_words = 1;
  int bits_per_word = 8;
};
CodeWordLayout code_word_layout(int num_channels);

/// Read-only view of contiguous codes [W, Z, Y, X].
struct CodeView {
  const void* words = nullptr;
  CodeWord word = CodeWord::u8;
  int num_words = 1;
  std::array<std::int64_t, 3> shape_zyx{0, 0, 0};
  int num_channels = 0;

  std::int64_t voxels() const { return shape_zyx[0] * shape_zyx[1] * shape_zyx[2]; }
  /// Word `w` of every voxel.
  template <typename Word>
  const Word* plane(int w) const {
    return static_cast<const Word*>(words) + static_cast<std::int64_t>(w) * voxels();
  }
};

/// Owning codes [W, Z, Y, X] in a SharedBuffer.
struct CodeArray {
  SharedBuffer storage;
  CodeWord word = CodeWord::u8;
  int num_words = 1;
  std::array<std::int64_t, 3> shape_zyx{0, 0, 0};
  int num_channels = 0;

  std::int64_t voxels() const { return shape_zyx[0] * shape_zyx[1] * shape_zyx[2]; }
  CodeView view() const { return {storage.data, word, num_words, shape_zyx, num_channels}; }
  operator CodeView() const { return view(); }  // NOLINT: a CodeArray is usable wherever a view is
  template <typename Word>
  Word* plane(int w) const {
    return storage.as<Word>() + static_cast<std::int64_t>(w) * voxels();
  }
};

/// All-zero codes (every voxel background).
CodeArray empty_code_array(const std::array<std::int64_t, 3>& shape_zyx, int num_channels);

/// Calls fn(Word{}) with the unsigned C++ type of one code word.
template <typename Function>
decltype(auto) with_code_word(CodeWord word, Function&& fn) {
  switch (word) {
    case CodeWord::u8: return fn(std::uint8_t{});
    case CodeWord::u16: return fn(std::uint16_t{});
    case CodeWord::u32: return fn(std::uint32_t{});
    case CodeWord::u64: return fn(std::uint64_t{});
  }
  throw std::invalid_argument("unknown code word type");
}

/// Voxels per channel (index C counts ignored voxels), in one pass.
std::vector<std::int64_t> count_channel_voxels(const CodeView& code);

/// Channels' combination of a single-word code value, as "a+b" (or "background").
std::string describe_combination(std::uint64_t code_value, const LabelSpec& spec);

}  // namespace mlseg
