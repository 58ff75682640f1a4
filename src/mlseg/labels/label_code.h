#pragma once
// Channel codes as tensors, for the training and inference pipeline: CodeVolume holds the
// [W, Z, Y, X] words (code_array.h describes the layout) in a torch::Tensor. Word types are
// uint8, then int16 / int32 / int64 used as unsigned bit patterns (LibTorch 1.13 has no
// uint16/32/64). A CodeVolume converts to a CodeView for the torch-free counting code, and
// wraps a CodeArray from the torch-free readers without copying.
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mlseg/labels/code_array.h"
#include "mlseg/labels/code_encode.h"
#include "mlseg/labels/label_spec.h"

namespace mlseg {

/// Storage type and word count for codes of `num_channels` channels plus the ignore flag.
struct CodeLayout {
  torch::ScalarType dtype = torch::kUInt8;
  int num_words = 1;
  int bits_per_word = 8;
};
CodeLayout code_layout(int num_channels);

struct CodeVolume {
  torch::Tensor words;  ///< [W, Z, Y, X], dtype and W from code_layout(num_channels)
  int num_channels = 0;

  std::array<std::int64_t, 3> shape_zyx() const { return {words.size(1), words.size(2), words.size(3)}; }
  /// The words as a view; throws std::invalid_argument unless they are contiguous CPU [W, Z, Y, X].
  CodeView view() const;
  operator CodeView() const { return view(); }  // NOLINT: every counting function takes a view
};

/// The same memory as a CodeVolume (no copy; the tensor keeps the array's storage alive).
CodeVolume code_volume_from(const CodeArray& code);

/// An all-zero code volume (every voxel background).
CodeVolume empty_code_volume(const std::array<std::int64_t, 3>& shape_zyx, int num_channels);

/// Raw label values found in `label_map` ([1, Z, Y, X], any integer dtype) that `spec` does not allow.
std::vector<UnexpectedValue> find_unexpected_values(const torch::Tensor& label_map, const LabelSpec& spec);

/// label_map / bitmask formats: [1, Z, Y, X] integer raw map -> code. Throws mlseg::Error listing
/// the unexpected values (fill in the file with Error::located).
CodeVolume encode_label_map(const torch::Tensor& label_map, const LabelSpec& spec);

/// multihot4d: [V, Z, Y, X] volumes (any dtype, nonzero = inside) -> code.
CodeVolume encode_multihot(const torch::Tensor& volumes, const LabelSpec& spec);

/// channel_masks: sets channel `channel`'s bit wherever `mask` ([1, Z, Y, X], nonzero = inside).
void add_channel_mask(CodeVolume& code, int channel, const torch::Tensor& mask);

/// [C, Z, Y, X] uint8 binary masks, one per channel.
torch::Tensor decode_channels(const CodeVolume& code);
/// [1, Z, Y, X] bool: channel c's mask.
torch::Tensor channel_mask(const CodeVolume& code, int channel);
/// [1, Z, Y, X] bool: the ignore flag.
torch::Tensor ignore_mask(const CodeVolume& code);

/// Back to the dataset's own raw format:
///  - label_map, plain labels: each channel's label value (exact inverse; overlapping input throws);
///  - label_map, regions: for each code the label whose region membership matches it exactly,
///    else nnU-Net's regions_class_order overwrite (lossy only for patterns no label has);
///  - bitmask: the OR of the channels' bit values.
/// Returns [1, Z, Y, X] int64. Ignore-flagged voxels get the ignore value.
torch::Tensor encode_to_raw_label_map(const CodeVolume& code, const LabelSpec& spec);

namespace detail {
/// Throws std::invalid_argument unless `code` is a contiguous CPU [W, Z, Y, X] code volume.
void require_code_volume(const CodeVolume& code, const char* what);
}  // namespace detail

}  // namespace mlseg
