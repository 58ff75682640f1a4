#include "mlseg/labels/label_spec.h"

#include <algorithm>
#include <set>

#include "mlseg/core/error.h"

namespace mlseg {

std::string to_string(LabelFormat format) {
  switch (format) {
    case LabelFormat::label_map: return "label_map";
    case LabelFormat::bitmask: return "bitmask";
    case LabelFormat::multihot4d: return "multihot4d";
    case LabelFormat::channel_masks: return "channel_masks";
  }
  return "unknown";
}

std::optional<LabelFormat> parse_label_format(const std::string& text) {
  for (LabelFormat format : {LabelFormat::label_map, LabelFormat::bitmask, LabelFormat::multihot4d,
                             LabelFormat::channel_masks}) {
    if (text == to_string(format)) return format;
  }
  return std::nullopt;
}

bool LabelSpec::is_region_based() const {
  if (format != LabelFormat::label_map) return false;
  return std::any_of(channels.begin(), channels.end(),
                     [](const LabelChannel& channel) { return channel.raw_values.size() > 1; });
}

bool LabelSpec::channels_can_overlap() const {
  if (format != LabelFormat::label_map) return true;
  std::set<std::int64_t> seen;
  for (const auto& channel : channels) {
    for (std::int64_t value : channel.raw_values) {
      if (!seen.insert(value).second) return true;
    }
  }
  return false;
}

std::vector<std::int64_t> LabelSpec::allowed_raw_values() const {
  std::set<std::int64_t> values{0};
  for (const auto& channel : channels) values.insert(channel.raw_values.begin(), channel.raw_values.end());
  if (ignore_value) values.insert(*ignore_value);
  return {values.begin(), values.end()};
}

std::uint64_t LabelSpec::declared_bits() const {
  std::uint64_t bits = 0;
  for (const auto& channel : channels) {
    for (std::int64_t value : channel.raw_values) bits |= static_cast<std::uint64_t>(value);
  }
  if (ignore_value) bits |= static_cast<std::uint64_t>(*ignore_value);
  return bits;
}

int LabelSpec::find_channel(const std::string& name) const {
  for (int c = 0; c < num_channels(); ++c) {
    if (channels[c].name == name) return c;
  }
  return -1;
}

void LabelSpec::validate(const std::string& source) const {
  const ErrorLocation where{source, "", ""};
  if (channels.empty()) {
    throw Error("no foreground channels are defined",
                "list at least one label besides \"background\": 0 under \"labels\"", where);
  }
  if (num_channels() > kMaxChannels) {
    throw Error(std::to_string(num_channels()) + " channels; mlseg supports at most " +
                    std::to_string(kMaxChannels),
                "split the structures into several datasets", where);
  }
  std::set<std::string> names;
  for (const auto& channel : channels) {
    if (channel.name.empty()) throw Error("a channel has an empty name", "give every label a name", where);
    if (!names.insert(channel.name).second) {
      throw Error("channel name \"" + channel.name + "\" appears twice", "make label names unique", where);
    }
  }
  auto channel_error = [&](const LabelChannel& channel, const std::string& problem, const std::string& fix) {
    return Error(problem, fix, {source, "", channel.name});
  };
  switch (format) {
    case LabelFormat::label_map:
      for (const auto& channel : channels) {
        if (channel.raw_values.empty()) {
          throw channel_error(channel, "the label lists no values", "give a label value or a list of values");
        }
        for (std::int64_t value : channel.raw_values) {
          if (value <= 0) {
            throw channel_error(channel, "label value " + std::to_string(value) +
                                             " is not a foreground label (must be > 0; 0 is background)",
                                "use positive label values");
          }
        }
      }
      if (ignore_value) {
        const auto allowed = allowed_raw_values();
        const std::int64_t max_label = *std::max_element(allowed.begin(), allowed.end());
        if (*ignore_value != max_label) {
          throw Error("the ignore label " + std::to_string(*ignore_value) +
                          " must be the highest label value (nnU-Net requires max label + 1)",
                      "renumber the ignore label to one above the largest label", where);
        }
        for (const auto& channel : channels) {
          if (std::find(channel.raw_values.begin(), channel.raw_values.end(), *ignore_value) !=
              channel.raw_values.end()) {
            throw channel_error(channel, "a channel includes the ignore label", "remove it from the channel");
          }
        }
      }
      if (is_region_based()) {
        if (regions_class_order.size() != channels.size()) {
          throw Error("region-based labels need \"regions_class_order\" with one label per region (" +
                          std::to_string(channels.size()) + " regions, " +
                          std::to_string(regions_class_order.size()) + " entries)",
                      "add \"regions_class_order\": the label each region is exported as, in region order",
                      where);
        }
      }
      break;
    case LabelFormat::bitmask: {
      std::uint64_t used = 0;
      for (const auto& channel : channels) {
        if (channel.raw_values.size() != 1) {
          throw channel_error(channel, "a bitmask channel needs exactly one bit value", "write e.g. \"liver\": 4");
        }
        const auto bit = static_cast<std::uint64_t>(channel.raw_values[0]);
        if (channel.raw_values[0] <= 0 || (bit & (bit - 1)) != 0) {
          throw channel_error(channel, "bit value " + std::to_string(channel.raw_values[0]) +
                                           " is not a power of two",
                              "give each channel its bit as a power of two (1, 2, 4, 8, ...)");
        }
        if (used & bit) throw channel_error(channel, "bit value used twice", "give each channel its own bit");
        used |= bit;
      }
      if (ignore_value) {
        const auto bit = static_cast<std::uint64_t>(*ignore_value);
        if (*ignore_value <= 0 || (bit & (bit - 1)) != 0 || (used & bit)) {
          throw Error("the ignore bit must be a power of two not used by any channel",
                      "pick an unused bit for \"ignore\"", where);
        }
      }
      break;
    }
    case LabelFormat::multihot4d: {
      std::set<std::int64_t> volumes;
      for (const auto& channel : channels) {
        if (channel.raw_values.size() != 1 || channel.raw_values[0] < 1 ||
            !volumes.insert(channel.raw_values[0]).second) {
          throw channel_error(channel, "a multihot4d channel needs one distinct 1-based volume index",
                              "number the channels 1, 2, 3, ... in the order of the 4D file's volumes");
        }
      }
      if (ignore_value) {
        throw Error("\"ignore\" is not supported for multihot4d labels",
                    "store the ignore mask as an extra label_map dataset or drop it", where);
      }
      break;
    }
    case LabelFormat::channel_masks:
      if (ignore_value) {
        throw Error("\"ignore\" is not supported for channel_masks labels",
                    "drop the ignore entry", where);
      }
      break;
  }
}

}  // namespace mlseg
