#include "mlseg/labels/label_code.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

// Calls fn(WordType{}) with the C++ type that holds one code word.
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

template <typename Word>
Word* word_pointer(const CodeVolume& code) {
  return reinterpret_cast<Word*>(code.words.data_ptr());
}

std::int64_t voxel_count(const std::array<std::int64_t, 3>& shape) { return shape[0] * shape[1] * shape[2]; }

void require_map(const torch::Tensor& label_map, const char* what) {
  if (!label_map.defined() || label_map.dim() != 4 || label_map.size(0) != 1 ||
      !c10::isIntegralType(label_map.scalar_type(), /*includeBool=*/false)) {
    throw std::invalid_argument(std::string(what) + ": expected a [1, Z, Y, X] integer label map");
  }
}

torch::Tensor as_int64(const torch::Tensor& label_map) {
  return label_map.scalar_type() == torch::kInt64 ? label_map.contiguous() : label_map.to(torch::kInt64).contiguous();
}

[[noreturn]] void throw_unexpected(const std::vector<UnexpectedValue>& unexpected, const LabelSpec& spec) {
  std::string listing;
  for (std::size_t i = 0; i < unexpected.size() && i < 8; ++i) {
    if (i) listing += ", ";
    listing += std::to_string(unexpected[i].value) + " (" + std::to_string(unexpected[i].voxels) + " voxels)";
  }
  if (unexpected.size() > 8) listing += ", ... (" + std::to_string(unexpected.size()) + " values)";
  throw Error("label values not declared in dataset.json: " + listing,
              spec.format == LabelFormat::bitmask ? "declare a channel for every bit used, or clear the stray bits"
                                                   : "add these values to \"labels\" (or a region), or fix the label file",
              {});
}

// Dense lookup table raw value -> single-word code for label_map datasets (values are bounded by
// the spec, so the table is small). Entries of unexpected values are kInvalid.
constexpr std::uint64_t kInvalid = ~std::uint64_t{0};

std::vector<std::uint64_t> label_lookup_table(const LabelSpec& spec) {
  const auto allowed = spec.allowed_raw_values();
  const std::int64_t max_value = allowed.back();
  std::vector<std::uint64_t> table(static_cast<std::size_t>(max_value) + 1, kInvalid);
  table[0] = 0;
  for (int c = 0; c < spec.num_channels(); ++c) {
    for (std::int64_t value : spec.channels[c].raw_values) {
      if (table[value] == kInvalid) table[value] = 0;
      table[value] |= std::uint64_t{1} << c;
    }
  }
  if (spec.ignore_value) table[*spec.ignore_value] = std::uint64_t{1} << spec.ignore_bit();
  return table;
}

// bitmask datasets: raw bit -> channel, for translating the file's bit positions to channel order.
struct BitTranslation {
  std::vector<int> channel_of_bit = std::vector<int>(64, -1);  // -2 = ignore bit
  std::uint64_t declared = 0;
};

BitTranslation bit_translation(const LabelSpec& spec) {
  BitTranslation translation;
  for (int c = 0; c < spec.num_channels(); ++c) {
    const auto value = static_cast<std::uint64_t>(spec.channels[c].raw_values.at(0));
    translation.channel_of_bit[__builtin_ctzll(value)] = c;
  }
  if (spec.ignore_value) {
    translation.channel_of_bit[__builtin_ctzll(static_cast<std::uint64_t>(*spec.ignore_value))] = -2;
  }
  translation.declared = spec.declared_bits();
  return translation;
}

template <typename Word>
void set_bit(Word* words, std::int64_t voxels, std::int64_t voxel, int bit, int bits_per_word) {
  words[(bit / bits_per_word) * voxels + voxel] |= static_cast<Word>(Word{1} << (bit % bits_per_word));
}

template <typename Word>
bool test_bit(const Word* words, std::int64_t voxels, std::int64_t voxel, int bit, int bits_per_word) {
  return (words[(bit / bits_per_word) * voxels + voxel] >> (bit % bits_per_word)) & 1;
}

}  // namespace

CodeLayout code_layout(int num_channels) {
  const int bits = num_channels + 1;
  if (bits <= 8) return {torch::kUInt8, 1, 8};
  if (bits <= 16) return {torch::kInt16, 1, 16};
  if (bits <= 32) return {torch::kInt32, 1, 32};
  return {torch::kInt64, (bits + 63) / 64, 64};
}

CodeVolume empty_code_volume(const std::array<std::int64_t, 3>& shape_zyx, int num_channels) {
  const CodeLayout layout = code_layout(num_channels);
  CodeVolume code;
  code.num_channels = num_channels;
  code.words = torch::zeros({layout.num_words, shape_zyx[0], shape_zyx[1], shape_zyx[2]}, layout.dtype);
  return code;
}

std::vector<UnexpectedValue> find_unexpected_values(const torch::Tensor& label_map_in, const LabelSpec& spec) {
  require_map(label_map_in, "find_unexpected_values");
  const torch::Tensor label_map = as_int64(label_map_in);
  std::map<std::int64_t, std::int64_t> unexpected;
  const auto* values = label_map.data_ptr<std::int64_t>();
  const std::int64_t count = label_map.numel();
  if (spec.format == LabelFormat::bitmask) {
    const std::uint64_t declared = spec.declared_bits();
    for (std::int64_t i = 0; i < count; ++i) {
      if (values[i] < 0 || (static_cast<std::uint64_t>(values[i]) & ~declared)) ++unexpected[values[i]];
    }
  } else {
    const auto table = label_lookup_table(spec);
    const auto size = static_cast<std::int64_t>(table.size());
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t value = values[i];
      if (value < 0 || value >= size || table[value] == kInvalid) ++unexpected[value];
    }
  }
  std::vector<UnexpectedValue> result;
  for (const auto& [value, voxels] : unexpected) result.push_back({value, voxels});
  return result;
}

namespace {

// uint8 / int8 / int16 label maps: one table over every possible stored value (256 or 65536
// entries) maps straight to the code, validating in the same pass.
template <typename Stored, typename Word>
CodeVolume encode_small_labels(const torch::Tensor& label_map, const LabelSpec& spec) {
  using Pattern = std::make_unsigned_t<Stored>;
  constexpr std::size_t kPatterns = std::size_t{1} << (8 * sizeof(Stored));
  std::vector<std::uint64_t> table(kPatterns, kInvalid);
  const std::vector<std::uint64_t> label_table =
      spec.format == LabelFormat::label_map ? label_lookup_table(spec) : std::vector<std::uint64_t>{};
  const BitTranslation translation = spec.format == LabelFormat::bitmask ? bit_translation(spec) : BitTranslation{};
  for (std::size_t pattern = 0; pattern < kPatterns; ++pattern) {
    const auto value = static_cast<std::int64_t>(static_cast<Stored>(static_cast<Pattern>(pattern)));
    if (value < 0) continue;
    if (spec.format == LabelFormat::label_map) {
      if (value < static_cast<std::int64_t>(label_table.size())) table[pattern] = label_table[value];
    } else if ((static_cast<std::uint64_t>(value) & ~translation.declared) == 0) {
      std::uint64_t code = 0;
      for (std::uint64_t raw = static_cast<std::uint64_t>(value); raw; raw &= raw - 1) {
        const int channel = translation.channel_of_bit[__builtin_ctzll(raw)];
        code |= std::uint64_t{1} << (channel == -2 ? spec.ignore_bit() : channel);
      }
      table[pattern] = code;
    }
  }
  CodeVolume code = empty_code_volume({label_map.size(1), label_map.size(2), label_map.size(3)}, spec.num_channels());
  const torch::Tensor values = label_map.contiguous();
  const auto* stored = reinterpret_cast<const Pattern*>(values.data_ptr());
  auto* words = word_pointer<Word>(code);
  const std::int64_t voxels = values.numel();
  bool any_invalid = false;
  for (std::int64_t i = 0; i < voxels; ++i) {
    const std::uint64_t entry = table[stored[i]];
    any_invalid |= entry == kInvalid;
    words[i] = static_cast<Word>(entry);
  }
  if (any_invalid) throw_unexpected(find_unexpected_values(label_map, spec), spec);
  return code;
}

}  // namespace

CodeVolume encode_label_map(const torch::Tensor& label_map_in, const LabelSpec& spec) {
  require_map(label_map_in, "encode_label_map");
  if (spec.format != LabelFormat::label_map && spec.format != LabelFormat::bitmask) {
    throw std::invalid_argument("encode_label_map: the spec's format is " + to_string(spec.format));
  }
  const CodeLayout small_layout = code_layout(spec.num_channels());
  const auto stored_type = label_map_in.scalar_type();
  if (small_layout.num_words == 1 &&
      (stored_type == torch::kUInt8 || stored_type == torch::kInt8 || stored_type == torch::kInt16)) {
    return with_word_type(small_layout.dtype, [&](auto tag) {
      using Word = decltype(tag);
      if (stored_type == torch::kUInt8) return encode_small_labels<std::uint8_t, Word>(label_map_in, spec);
      if (stored_type == torch::kInt8) return encode_small_labels<std::int8_t, Word>(label_map_in, spec);
      return encode_small_labels<std::int16_t, Word>(label_map_in, spec);
    });
  }
  const torch::Tensor label_map = as_int64(label_map_in);
  const auto unexpected = find_unexpected_values(label_map, spec);
  if (!unexpected.empty()) throw_unexpected(unexpected, spec);
  CodeVolume code = empty_code_volume({label_map.size(1), label_map.size(2), label_map.size(3)},
                                      spec.num_channels());
  const CodeLayout layout = code_layout(spec.num_channels());
  const auto* values = label_map.data_ptr<std::int64_t>();
  const std::int64_t voxels = label_map.numel();
  with_word_type(layout.dtype, [&](auto tag) {
    using Word = decltype(tag);
    Word* words = word_pointer<Word>(code);
    if (spec.format == LabelFormat::label_map && layout.num_words == 1) {
      const auto table = label_lookup_table(spec);
      for (std::int64_t i = 0; i < voxels; ++i) words[i] = static_cast<Word>(table[values[i]]);
    } else if (spec.format == LabelFormat::label_map) {
      // Multi-word label maps: per value, the list of bits to set.
      std::unordered_map<std::int64_t, std::vector<int>> bits_of_value;
      for (int c = 0; c < spec.num_channels(); ++c) {
        for (std::int64_t value : spec.channels[c].raw_values) bits_of_value[value].push_back(c);
      }
      if (spec.ignore_value) bits_of_value[*spec.ignore_value].push_back(spec.ignore_bit());
      for (std::int64_t i = 0; i < voxels; ++i) {
        if (values[i] == 0) continue;
        for (int bit : bits_of_value[values[i]]) set_bit(words, voxels, i, bit, layout.bits_per_word);
      }
    } else {
      const BitTranslation translation = bit_translation(spec);
      for (std::int64_t i = 0; i < voxels; ++i) {
        auto raw = static_cast<std::uint64_t>(values[i]);
        while (raw) {
          const int raw_bit = __builtin_ctzll(raw);
          raw &= raw - 1;
          const int channel = translation.channel_of_bit[raw_bit];
          const int bit = channel == -2 ? spec.ignore_bit() : channel;
          set_bit(words, voxels, i, bit, layout.bits_per_word);
        }
      }
    }
  });
  return code;
}

CodeVolume encode_multihot(const torch::Tensor& volumes, const LabelSpec& spec) {
  if (!volumes.defined() || volumes.dim() != 4) {
    throw std::invalid_argument("encode_multihot: expected [V, Z, Y, X]");
  }
  std::int64_t needed = 0;
  for (const auto& channel : spec.channels) needed = std::max(needed, channel.raw_values.at(0));
  if (volumes.size(0) < needed) {
    throw Error("the 4D label file has " + std::to_string(volumes.size(0)) +
                    " volumes but dataset.json maps a channel to volume " + std::to_string(needed),
                "store one volume per channel, in the order of \"labels\"", {});
  }
  CodeVolume code = empty_code_volume({volumes.size(1), volumes.size(2), volumes.size(3)}, spec.num_channels());
  for (int c = 0; c < spec.num_channels(); ++c) {
    add_channel_mask(code, c, volumes[spec.channels[c].raw_values[0] - 1].unsqueeze(0));
  }
  return code;
}

void add_channel_mask(CodeVolume& code, int channel, const torch::Tensor& mask) {
  if (!mask.defined() || mask.dim() != 4 || mask.size(0) != 1 ||
      mask.size(1) != code.words.size(1) || mask.size(2) != code.words.size(2) ||
      mask.size(3) != code.words.size(3)) {
    throw std::invalid_argument("add_channel_mask: mask shape differs from the code volume");
  }
  const torch::Tensor inside = (mask != 0).to(torch::kUInt8).contiguous();
  const auto* flags = inside.data_ptr<std::uint8_t>();
  const CodeLayout layout = code_layout(code.num_channels);
  const std::int64_t voxels = inside.numel();
  with_word_type(layout.dtype, [&](auto tag) {
    using Word = decltype(tag);
    Word* words = word_pointer<Word>(code) + static_cast<std::int64_t>(channel / layout.bits_per_word) * voxels;
    const Word bit = static_cast<Word>(Word{1} << (channel % layout.bits_per_word));
    for (std::int64_t i = 0; i < voxels; ++i) {
      if (flags[i]) words[i] |= bit;
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

std::vector<std::int64_t> count_channel_voxels(const CodeVolume& code) {
  const int bits = code.num_channels + 1;
  std::vector<std::int64_t> counts(bits, 0);
  const CodeLayout layout = code_layout(code.num_channels);
  const std::int64_t voxels = voxel_count(code.shape_zyx());
  with_word_type(layout.dtype, [&](auto tag) {
    using Word = decltype(tag);
    const Word* words = word_pointer<Word>(code);
    for (int w = 0; w < layout.num_words; ++w) {
      const Word* word = words + static_cast<std::int64_t>(w) * voxels;
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

std::string describe_combination(std::uint64_t code_value, const LabelSpec& spec) {
  std::string text;
  for (int c = 0; c < spec.num_channels() && c < 64; ++c) {
    if ((code_value >> c) & 1) text += (text.empty() ? "" : "+") + spec.channels[c].name;
  }
  if (spec.num_channels() < 64 && ((code_value >> spec.ignore_bit()) & 1)) text += text.empty() ? "ignore" : "+ignore";
  return text.empty() ? "background" : text;
}

}  // namespace mlseg
