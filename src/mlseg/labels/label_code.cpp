#include "mlseg/labels/label_code.h"

#include <algorithm>
#include <unordered_map>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

// Calls fn(Word{}) with the C++ type that holds one code word.
template <typename Function>
decltype(auto) with_word_type(torch::ScalarType dtype, Function&& fn) {
  switch (dtype) {
    case torch::kUInt8: return fn(std::uint8_t{});
    case torch::kInt16: return fn(std::uint16_t{});
    case torch::kInt32: return fn(std::uint32_t{});
    case torch::kInt64: return fn(std::uint64_t{});
    default:
      throw std::invalid_argument(std::string("code volume of unexpected dtype ") + c10::toString(dtype) +
                                  "; codes are uint8, int16, int32 or int64");
  }
}

torch::ScalarType word_dtype(CodeWord word) {
  switch (word) {
    case CodeWord::u8: return torch::kUInt8;
    case CodeWord::u16: return torch::kInt16;
    case CodeWord::u32: return torch::kInt32;
    case CodeWord::u64: return torch::kInt64;
  }
  return torch::kInt64;
}

template <typename Word>
const Word* word_pointer(const CodeVolume& code) {
  return reinterpret_cast<const Word*>(code.words.data_ptr());
}

std::int64_t voxel_count(const std::array<std::int64_t, 3>& shape) { return shape[0] * shape[1] * shape[2]; }

template <typename Word>
bool test_bit(const Word* words, std::int64_t voxels, std::int64_t voxel, int bit, int bits_per_word) {
  return (words[(bit / bits_per_word) * voxels + voxel] >> (bit % bits_per_word)) & 1;
}

void require_map(const torch::Tensor& label_map, const char* what) {
  if (!label_map.defined() || label_map.dim() != 4 || label_map.size(0) != 1 ||
      !c10::isIntegralType(label_map.scalar_type(), /*includeBool=*/false)) {
    throw std::invalid_argument(std::string(what) + ": expected a [1, Z, Y, X] integer label map");
  }
}

// An integer [V, Z, Y, X] tensor as label values: uint8 / int8 / int16 / int64 as stored, other
// integer types widened to int64. `keep` holds the contiguous tensor the view points into.
LabelValuesView integer_values(const torch::Tensor& values, torch::Tensor& keep) {
  const auto type = values.scalar_type();
  LabelValuesView view;
  if (type == torch::kUInt8 || type == torch::kInt8 || type == torch::kInt16 || type == torch::kInt64) {
    keep = values.contiguous().cpu();
    view.type = type == torch::kUInt8  ? LabelValueType::uint8
                : type == torch::kInt8 ? LabelValueType::int8
                : type == torch::kInt16 ? LabelValueType::int16
                                        : LabelValueType::int64;
  } else {
    keep = values.to(torch::kInt64).contiguous().cpu();
    view.type = LabelValueType::int64;
  }
  view.data = keep.data_ptr();
  view.volumes = keep.size(0);
  view.shape_zyx = {keep.size(1), keep.size(2), keep.size(3)};
  return view;
}

// Any [V, Z, Y, X] tensor as 0/1 uint8 flags (nonzero = inside).
LabelValuesView nonzero_flags(const torch::Tensor& values, torch::Tensor& keep) {
  keep = values.ne(0).to(torch::kUInt8).contiguous().cpu();
  return integer_values(keep, keep);
}

}  // namespace

namespace detail {
void require_code_volume(const CodeVolume& code, const char* what) {
  if (!code.words.defined() || code.words.dim() != 4 || !code.words.is_contiguous() ||
      !code.words.device().is_cpu() || code.words.size(0) != code_layout(code.num_channels).num_words ||
      code.words.scalar_type() != code_layout(code.num_channels).dtype) {
    throw std::invalid_argument(std::string(what) + ": expected a contiguous CPU [W, Z, Y, X] code volume");
  }
}
}  // namespace detail

CodeLayout code_layout(int num_channels) {
  const CodeWordLayout layout = code_word_layout(num_channels);
  return {word_dtype(layout.word), layout.num_words, layout.bits_per_word};
}

CodeView CodeVolume::view() const {
  detail::require_code_volume(*this, "code volume");
  const CodeWordLayout layout = code_word_layout(num_channels);
  return {words.data_ptr(), layout.word, layout.num_words, shape_zyx(), num_channels};
}

CodeVolume code_volume_from(const CodeArray& code) {
  CodeVolume volume;
  volume.num_channels = code.num_channels;
  std::shared_ptr<void> owner = code.storage.owner;
  volume.words = torch::from_blob(code.storage.data,
                                  {code.num_words, code.shape_zyx[0], code.shape_zyx[1], code.shape_zyx[2]},
                                  [owner](void*) mutable { owner.reset(); },
                                  torch::TensorOptions().dtype(word_dtype(code.word)));
  return volume;
}

CodeVolume empty_code_volume(const std::array<std::int64_t, 3>& shape_zyx, int num_channels) {
  const CodeLayout layout = code_layout(num_channels);
  CodeVolume code;
  code.num_channels = num_channels;
  code.words = torch::zeros({layout.num_words, shape_zyx[0], shape_zyx[1], shape_zyx[2]}, layout.dtype);
  return code;
}

std::vector<UnexpectedValue> find_unexpected_values(const torch::Tensor& label_map, const LabelSpec& spec) {
  require_map(label_map, "find_unexpected_values");
  torch::Tensor keep;
  return find_unexpected_values(integer_values(label_map, keep), spec);
}

CodeVolume encode_label_map(const torch::Tensor& label_map, const LabelSpec& spec) {
  require_map(label_map, "encode_label_map");
  torch::Tensor keep;
  return code_volume_from(encode_label_values(integer_values(label_map, keep), spec));
}

CodeVolume encode_multihot(const torch::Tensor& volumes, const LabelSpec& spec) {
  if (!volumes.defined() || volumes.dim() != 4) {
    throw std::invalid_argument("encode_multihot: expected [V, Z, Y, X]");
  }
  torch::Tensor keep;
  return code_volume_from(encode_multihot_values(nonzero_flags(volumes, keep), spec));
}

void add_channel_mask(CodeVolume& code, int channel, const torch::Tensor& mask) {
  if (!mask.defined() || mask.dim() != 4 || mask.size(0) != 1 || mask.size(1) != code.words.size(1) ||
      mask.size(2) != code.words.size(2) || mask.size(3) != code.words.size(3)) {
    throw std::invalid_argument("add_channel_mask: mask shape differs from the code volume");
  }
  const CodeView view = code.view();
  torch::Tensor keep;
  const LabelValuesView flags = nonzero_flags(mask, keep);
  const auto* inside = static_cast<const std::uint8_t*>(flags.data);
  const CodeWordLayout layout = code_word_layout(code.num_channels);
  const std::int64_t voxels = view.voxels();
  with_code_word(view.word, [&](auto tag) {
    using Word = decltype(tag);
    Word* words = static_cast<Word*>(code.words.data_ptr()) + static_cast<std::int64_t>(channel / layout.bits_per_word) * voxels;
    const Word bit = static_cast<Word>(Word{1} << (channel % layout.bits_per_word));
    for (std::int64_t i = 0; i < voxels; ++i) {
      if (inside[i]) words[i] |= bit;
    }
  });
}

torch::Tensor decode_channels(const CodeVolume& code) {
  const auto shape = code.shape_zyx();
  torch::Tensor masks = torch::zeros({code.num_channels, shape[0], shape[1], shape[2]}, torch::kUInt8);
  const CodeLayout layout = code_layout(code.num_channels);
  const std::int64_t voxels = voxel_count(shape);
  auto* out = masks.data_ptr<std::uint8_t>();
  with_word_type(layout.dtype, [&](auto tag) {
    using Word = decltype(tag);
    const Word* words = word_pointer<Word>(code);
    for (int c = 0; c < code.num_channels; ++c) {
      const Word* word = words + static_cast<std::int64_t>(c / layout.bits_per_word) * voxels;
      const int shift = c % layout.bits_per_word;
      std::uint8_t* target = out + static_cast<std::int64_t>(c) * voxels;
      for (std::int64_t i = 0; i < voxels; ++i) target[i] = static_cast<std::uint8_t>((word[i] >> shift) & 1);
    }
  });
  return masks;
}

namespace {
torch::Tensor bit_mask(const CodeVolume& code, int bit) {
  const auto shape = code.shape_zyx();
  torch::Tensor mask = torch::zeros({1, shape[0], shape[1], shape[2]}, torch::kBool);
  const CodeLayout layout = code_layout(code.num_channels);
  const std::int64_t voxels = voxel_count(shape);
  auto* out = mask.data_ptr<bool>();
  with_word_type(layout.dtype, [&](auto tag) {
    using Word = decltype(tag);
    const Word* words = word_pointer<Word>(code);
    for (std::int64_t i = 0; i < voxels; ++i) out[i] = test_bit(words, voxels, i, bit, layout.bits_per_word);
  });
  return mask;
}
}  // namespace

torch::Tensor channel_mask(const CodeVolume& code, int channel) { return bit_mask(code, channel); }
torch::Tensor ignore_mask(const CodeVolume& code) { return bit_mask(code, code.num_channels); }

torch::Tensor encode_to_raw_label_map(const CodeVolume& code, const LabelSpec& spec) {
  const auto shape = code.shape_zyx();
  torch::Tensor map = torch::zeros({1, shape[0], shape[1], shape[2]}, torch::kInt64);
  auto* out = map.data_ptr<std::int64_t>();
  const std::int64_t voxels = voxel_count(shape);
  const CodeLayout layout = code_layout(code.num_channels);
  const int ignore_bit = spec.ignore_bit();
  const std::int64_t ignore_value = spec.ignore_value.value_or(0);

  if (spec.format == LabelFormat::bitmask) {
    with_word_type(layout.dtype, [&](auto tag) {
      using Word = decltype(tag);
      const Word* words = word_pointer<Word>(code);
      for (std::int64_t i = 0; i < voxels; ++i) {
        if (test_bit(words, voxels, i, ignore_bit, layout.bits_per_word)) {
          out[i] = ignore_value;
          continue;
        }
        std::int64_t raw = 0;
        for (int c = 0; c < spec.num_channels(); ++c) {
          if (test_bit(words, voxels, i, c, layout.bits_per_word)) raw |= spec.channels[c].raw_values[0];
        }
        out[i] = raw;
      }
    });
    return map;
  }
  if (spec.format != LabelFormat::label_map) {
    throw Error("labels stored as " + to_string(spec.format) + " have no single label map form",
                "write them per channel (multihot4d or channel masks)", {});
  }
  if (layout.num_words != 1) {
    throw Error("more than 63 channels cannot be written as one label map",
                "write them per channel (multihot4d or channel masks)", {});
  }
  // Pattern (channel set) -> raw label. Exact matches first, in label order.
  std::unordered_map<std::uint64_t, std::int64_t> label_of_pattern;
  const auto allowed = spec.allowed_raw_values();
  for (std::int64_t value : allowed) {
    if (value == 0 || (spec.ignore_value && value == *spec.ignore_value)) continue;
    std::uint64_t pattern = 0;
    for (int c = 0; c < spec.num_channels(); ++c) {
      const auto& values = spec.channels[c].raw_values;
      if (std::find(values.begin(), values.end(), value) != values.end()) pattern |= std::uint64_t{1} << c;
    }
    label_of_pattern.emplace(pattern, value);
  }
  const bool regions = spec.is_region_based();
  with_word_type(layout.dtype, [&](auto tag) {
    using Word = decltype(tag);
    const Word* words = word_pointer<Word>(code);
    std::unordered_map<std::uint64_t, std::int64_t> cache;
    for (std::int64_t i = 0; i < voxels; ++i) {
      const auto value = static_cast<std::uint64_t>(words[i]);
      if (value == 0) continue;
      if ((value >> ignore_bit) & 1) {
        out[i] = ignore_value;
        continue;
      }
      auto cached = cache.find(value);
      if (cached == cache.end()) {
        std::int64_t raw;
        auto exact = label_of_pattern.find(value);
        if (exact != label_of_pattern.end()) {
          raw = exact->second;
        } else if (regions) {
          raw = 0;  // nnU-Net's export: later regions overwrite earlier ones
          for (int c = 0; c < spec.num_channels(); ++c) {
            if ((value >> c) & 1) raw = spec.regions_class_order[c];
          }
        } else {
          throw Error("voxels belong to several channels (" + describe_combination(value, spec) +
                          ") but plain label maps cannot store overlap",
                      "write per-channel masks, or declare the channels as regions", {});
        }
        cached = cache.emplace(value, raw).first;
      }
      out[i] = cached->second;
    }
  });
  return map;
}

}  // namespace mlseg
