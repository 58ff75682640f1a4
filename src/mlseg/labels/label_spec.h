#pragma once
// LabelSpec: what a dataset's labels mean, as an ordered list of named channels.
//
// Every label format mlseg reads — nnU-Net label maps (plain labels or regions), bitmask-encoded
// maps, 4D multi-hot volumes and per-channel mask files — becomes one LabelSpec, and every case's
// raw labels become a per-voxel channel *code* (see label_code.h). Channel c is bit c of the
// code; channels are numbered in the order dataset.json lists them, background excluded.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlseg {

/// How a case's labels are stored on disk (dataset.json key "label_format").
enum class LabelFormat {
  label_map,      ///< nnU-Net: one integer map; a channel is a label value or a region (list)
  bitmask,        ///< one integer map; channel c is set where the voxel has the channel's bit
  multihot4d,     ///< one 4D file; volume k (1-based) is channel k's binary mask
  channel_masks,  ///< one binary mask file per channel (a folder per case, or explicit paths)
};

std::string to_string(LabelFormat format);
/// Parses "label_map" | "bitmask" | "multihot4d" | "channel_masks"; nullopt if unknown.
std::optional<LabelFormat> parse_label_format(const std::string& text);

struct LabelChannel {
  std::string name;
  /// label_map: the label values whose union is this channel (one value = plain label, more =
  /// nnU-Net region). bitmask: one value, the channel's bit (a power of two). multihot4d: one
  /// value, the 1-based volume index. channel_masks: empty (the mask file is named after `name`).
  std::vector<std::int64_t> raw_values;
};

/// The largest channel count mlseg accepts (multi-word codes); TotalSegmentator has 117.
inline constexpr int kMaxChannels = 1024;

struct LabelSpec {
  LabelFormat format = LabelFormat::label_map;
  std::vector<LabelChannel> channels;
  /// label_map: the ignore label value; bitmask: the ignore bit's value. Voxels carrying it get
  /// the reserved ignore flag (bit num_channels() of the code) and no channel bits.
  std::optional<std::int64_t> ignore_value;
  /// nnU-Net's regions_class_order (label_map with regions): the label each region exports as.
  std::vector<std::int64_t> regions_class_order;

  int num_channels() const { return static_cast<int>(channels.size()); }
  /// The ignore flag's bit in the code (one past the last channel).
  int ignore_bit() const { return num_channels(); }
  /// True for nnU-Net region datasets (some channel is a union of several label values).
  bool is_region_based() const;
  /// Whether a voxel can belong to several channels (regions, bitmask, multi-hot, masks).
  /// False only for plain label maps, where channels are mutually exclusive.
  bool channels_can_overlap() const;
  /// label_map: every raw value a label file may contain (0, each label, the ignore label).
  std::vector<std::int64_t> allowed_raw_values() const;
  /// bitmask: the OR of every declared bit (and the ignore bit).
  std::uint64_t declared_bits() const;
  /// Index of the channel called `name`, or -1.
  int find_channel(const std::string& name) const;

  /// Checks internal consistency (names unique and non-empty, values valid for the format,
  /// regions_class_order consistent). Throws mlseg::Error naming `source` and the fix.
  void validate(const std::string& source) const;
};

}  // namespace mlseg
