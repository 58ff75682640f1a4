#include "mlseg/labels/code_encode.h"

#include <algorithm>
#include <map>
#include <type_traits>
#include <unordered_map>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

// Calls fn(Value{}) with the C++ type of one stored label value.
template <typename Function>
decltype(auto) with_value_type(LabelValueType type, Function&& fn) {
  switch (type) {
    case LabelValueType::uint8: return fn(std::uint8_t{});
    case LabelValueType::int8: return fn(std::int8_t{});
    case LabelValueType::int16: return fn(std::int16_t{});
    case LabelValueType::int64: return fn(std::int64_t{});
  }
  throw std::invalid_argument("unknown label value type");
}

void require_values(const LabelValuesView& values, const char* what) {
  if (values.data == nullptr && values.voxels() * values.volumes > 0) {
    throw std::invalid_argument(std::string(what) + ": label values without data");
  }
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

template <typename Value>
std::vector<UnexpectedValue> find_unexpected_typed(const Value* values, std::int64_t count, const LabelSpec& spec) {
  std::map<std::int64_t, std::int64_t> unexpected;
  if (spec.format == LabelFormat::bitmask) {
    const std::uint64_t declared = spec.declared_bits();
    for (std::int64_t i = 0; i < count; ++i) {
      const auto value = static_cast<std::int64_t>(values[i]);
      if (value < 0 || (static_cast<std::uint64_t>(value) & ~declared)) ++unexpected[value];
    }
  } else {
    const auto table = label_lookup_table(spec);
    const auto size = static_cast<std::int64_t>(table.size());
    for (std::int64_t i = 0; i < count; ++i) {
      const auto value = static_cast<std::int64_t>(values[i]);
      if (value < 0 || value >= size || table[value] == kInvalid) ++unexpected[value];
    }
  }
  std::vector<UnexpectedValue> result;
  for (const auto& [value, voxels] : unexpected) result.push_back({value, voxels});
  return result;
}

// uint8 / int8 / int16 label maps: one table over every possible stored value (256 or 65536
// entries) maps straight to the code, validating in the same pass.
template <typename Stored, typename Word>
void encode_small_labels(const LabelValuesView& label_map, const LabelSpec& spec, CodeArray& code) {
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
      std::uint64_t bits = 0;
      for (std::uint64_t raw = static_cast<std::uint64_t>(value); raw; raw &= raw - 1) {
        const int channel = translation.channel_of_bit[__builtin_ctzll(raw)];
        bits |= std::uint64_t{1} << (channel == -2 ? spec.ignore_bit() : channel);
      }
      table[pattern] = bits;
    }
  }
  const auto* stored = static_cast<const Pattern*>(label_map.data);
  Word* words = code.plane<Word>(0);
  const std::int64_t voxels = label_map.voxels();
  bool any_invalid = false;
  for (std::int64_t i = 0; i < voxels; ++i) {
    const std::uint64_t entry = table[stored[i]];
    any_invalid |= entry == kInvalid;
    words[i] = static_cast<Word>(entry);
  }
  if (any_invalid) throw_unexpected(find_unexpected_values(label_map, spec), spec);
}

template <typename Word>
void encode_int64_labels(const std::int64_t* values, std::int64_t voxels, const LabelSpec& spec,
                         const CodeWordLayout& layout, CodeArray& code) {
  Word* words = code.plane<Word>(0);
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
}

}  // namespace

int label_value_bytes(LabelValueType type) {
  switch (type) {
    case LabelValueType::uint8:
    case LabelValueType::int8: return 1;
    case LabelValueType::int16: return 2;
    case LabelValueType::int64: return 8;
  }
  return 8;
}

std::vector<UnexpectedValue> find_unexpected_values(const LabelValuesView& label_map, const LabelSpec& spec) {
  require_values(label_map, "find_unexpected_values");
  return with_value_type(label_map.type, [&](auto tag) {
    using Value = decltype(tag);
    return find_unexpected_typed(static_cast<const Value*>(label_map.data), label_map.voxels() * label_map.volumes,
                                 spec);
  });
}

CodeArray encode_label_values(const LabelValuesView& label_map, const LabelSpec& spec) {
  require_values(label_map, "encode_label_values");
  if (label_map.volumes != 1) throw std::invalid_argument("encode_label_values: expected one volume");
  if (spec.format != LabelFormat::label_map && spec.format != LabelFormat::bitmask) {
    throw std::invalid_argument("encode_label_values: the spec's format is " + to_string(spec.format));
  }
  const CodeWordLayout layout = code_word_layout(spec.num_channels());
  CodeArray code = empty_code_array(label_map.shape_zyx, spec.num_channels());
  if (label_map.type != LabelValueType::int64 && layout.num_words == 1) {
    with_code_word(layout.word, [&](auto word_tag) {
      using Word = decltype(word_tag);
      with_value_type(label_map.type, [&](auto value_tag) {
        using Stored = decltype(value_tag);
        if constexpr (sizeof(Stored) <= 2) encode_small_labels<Stored, Word>(label_map, spec, code);
      });
    });
    return code;
  }
  // Wide storage (or more than 63 channels): validate first, then encode from int64 values.
  std::vector<std::int64_t> widened;
  const std::int64_t* values = nullptr;
  if (label_map.type == LabelValueType::int64) {
    values = static_cast<const std::int64_t*>(label_map.data);
  } else {
    with_value_type(label_map.type, [&](auto tag) {
      using Value = decltype(tag);
      const auto* stored = static_cast<const Value*>(label_map.data);
      widened.assign(stored, stored + label_map.voxels());
    });
    values = widened.data();
  }
  const auto unexpected = find_unexpected_typed(values, label_map.voxels(), spec);
  if (!unexpected.empty()) throw_unexpected(unexpected, spec);
  with_code_word(layout.word, [&](auto tag) {
    encode_int64_labels<decltype(tag)>(values, label_map.voxels(), spec, layout, code);
  });
  return code;
}

CodeArray encode_multihot_values(const LabelValuesView& volumes, const LabelSpec& spec) {
  require_values(volumes, "encode_multihot_values");
  std::int64_t needed = 0;
  for (const auto& channel : spec.channels) needed = std::max(needed, channel.raw_values.at(0));
  if (volumes.volumes < needed) {
    throw Error("the 4D label file has " + std::to_string(volumes.volumes) +
                    " volumes but dataset.json maps a channel to volume " + std::to_string(needed),
                "store one volume per channel, in the order of \"labels\"", {});
  }
  CodeArray code = empty_code_array(volumes.shape_zyx, spec.num_channels());
  const std::int64_t volume_bytes = volumes.voxels() * label_value_bytes(volumes.type);
  for (int c = 0; c < spec.num_channels(); ++c) {
    LabelValuesView one = volumes;
    one.volumes = 1;
    one.data = static_cast<const std::uint8_t*>(volumes.data) + (spec.channels[c].raw_values[0] - 1) * volume_bytes;
    add_channel_mask(code, c, one);
  }
  return code;
}

void add_channel_mask(CodeArray& code, int channel, const LabelValuesView& mask) {
  require_values(mask, "add_channel_mask");
  if (mask.shape_zyx != code.shape_zyx) {
    throw std::invalid_argument("add_channel_mask: mask shape differs from the code volume");
  }
  if (channel < 0 || channel >= code.num_channels + 1) throw std::invalid_argument("add_channel_mask: no such channel");
  const CodeWordLayout layout = code_word_layout(code.num_channels);
  const std::int64_t voxels = code.voxels();
  with_code_word(code.word, [&](auto word_tag) {
    using Word = decltype(word_tag);
    Word* words = code.plane<Word>(channel / layout.bits_per_word);
    const Word bit = static_cast<Word>(Word{1} << (channel % layout.bits_per_word));
    with_value_type(mask.type, [&](auto value_tag) {
      using Value = decltype(value_tag);
      const auto* values = static_cast<const Value*>(mask.data);
      for (std::int64_t v = 0; v < mask.volumes; ++v) {
        const Value* volume = values + v * voxels;
        for (std::int64_t i = 0; i < voxels; ++i) {
          if (volume[i] != 0) words[i] |= bit;
        }
      }
    });
  });
}

}  // namespace mlseg
