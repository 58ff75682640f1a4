#include "mlseg/preprocessing/code_words64.h"

namespace mlseg {

torch::Tensor code_words_as_uint64(const CodeVolume& code) {
  const int64_t words = code.words.size(0);
  auto result = code.words.reshape({words, -1}).to(torch::kLong).contiguous();
  const int bits = static_cast<int>(code.words.element_size()) * 8;
  if (bits < 64) result.bitwise_and_(static_cast<int64_t>((uint64_t{1} << bits) - 1));
  return result;
}

void store_code_words(CodeVolume& code, const torch::Tensor& words64) {
  code.words = words64.to(code.words.scalar_type()).reshape(code.words.sizes()).contiguous();
}

std::string combination_name(const std::vector<std::uint64_t>& code_words, const std::vector<std::string>& channel_names) {
  std::string name;
  for (size_t c = 0; c < channel_names.size(); ++c) {
    const size_t word = c / 64, bit = c % 64;
    if (word < code_words.size() && ((code_words[word] >> bit) & 1u)) {
      if (!name.empty()) name += "+";
      name += channel_names[c];
    }
  }
  return name.empty() ? "background" : name;
}

}  // namespace mlseg
