#pragma once
// Channel codes as plain uint64 words for the preprocessing passes that look at whole codes
// (locations, rare combinations): a [W, V] int64 copy, masked to the storage width so that
// int16/int32 bit patterns are not sign-extended.
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mlseg/labels/label_code.h"

namespace mlseg {

/// [W, Z*Y*X] int64, contiguous; read it through a uint64_t pointer.
torch::Tensor code_words_as_uint64(const CodeVolume& code);

/// Back to the CodeVolume's own dtype and shape.
void store_code_words(CodeVolume& code, const torch::Tensor& words64);

/// "a+b" for the channels set in `code_words` (ignore bit left out), "background" when none.
std::string combination_name(const std::vector<std::uint64_t>& code_words, const std::vector<std::string>& channel_names);

}  // namespace mlseg
