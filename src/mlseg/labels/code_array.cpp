#include "mlseg/labels/code_array.h"

namespace mlseg {

int code_word_bytes(CodeWord word) {
  switch (word) {
    case CodeWord::u8: return 1;
    case CodeWord::u16: return 2;
    case CodeWord::u32: return 4;
    case CodeWord::u64: return 8;
  }
  return 8;
}

CodeWordLayout code_word_layout(int num_channels) {
  const int bits = num_channels + 1;
  if (bits <= 8) return {CodeWord::u8, 1, 8};
  if (bits <= 16) return {CodeWord::u16, 1, 16};
  if (bits <= 32) return {CodeWord::u32, 1, 32};
  return {CodeWord::u64, (bits + 63) / 64, 64};
}

CodeArray empty_code_array(const std::array<std::int64_t, 3>& shape_zyx, int num_channels) {
  for (std::int64_t extent : shape_zyx) {
    if (extent < 0) throw std::invalid_argument("empty_code_array: negative extent");
  }
  const CodeWordLayout layout = code_word_layout(num_channels);
  CodeArray code;
  code.word = layout.word;
  code.num_words = layout.num_words;
  code.shape_zyx = shape_zyx;
  code.num_channels = num_channels;
  code.storage = SharedBuffer::zeros(code.voxels() * layout.num_words * code_word_bytes(layout.word));
  return code;
}

std::vector<std::int64_t> count_channel_voxels(const CodeView& code) {
  const int bits = code.num_channels + 1;
  std::vector<std::int64_t> counts(bits, 0);
  const CodeWordLayout layout = code_word_layout(code.num_channels);
  const std::int64_t voxels = code.voxels();
  with_code_word(code.word, [&](auto tag) {
    using Word = decltype(tag);
    for (int w = 0; w < code.num_words; ++w) {
      const Word* word = code.plane<Word>(w);
      const int first_bit = w * layout.bits_per_word;
      for (std::int64_t i = 0; i < voxels; ++i) {
        auto value = static_cast<std::uint64_t>(word[i]);
        while (value) {
          const int bit = first_bit + __builtin_ctzll(value);
          value &= value - 1;
          if (bit < bits) ++counts[bit];
        }
      }
    }
  });
  return counts;
}

std::string describe_combination(std::uint64_t code_value, const LabelSpec& spec) {
  std::string text;
  for (int c = 0; c < spec.num_channels() && c < 64; ++c) {
    if ((code_value >> c) & 1) text += (text.empty() ? "" : "+") + spec.channels[c].name;
  }
  if (spec.num_channels() < 64 && ((code_value >> spec.ignore_bit()) & 1)) text += text.empty() ? "ignore" : "+ignore";
  return text.empty() ? "background" : text;
}

}  // namespace mlseg
