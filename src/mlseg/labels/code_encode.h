#pragma once
// Raw label values -> channel codes, without LibTorch (see code_array.h). io's label readers
// deliver [V, Z, Y, X] values as uint8 / int8 / int16 when stored so, else int64; the tensor
// API in label_code.h wraps these functions.
#include <array>
#include <cstdint>
#include <vector>

#include "mlseg/labels/code_array.h"
#include "mlseg/labels/label_spec.h"

namespace mlseg {

enum class LabelValueType { uint8, int8, int16, int64 };

int label_value_bytes(LabelValueType type);

/// Contiguous label values [volumes, Z, Y, X].
struct LabelValuesView {
  const void* data = nullptr;
  LabelValueType type = LabelValueType::int64;
  std::int64_t volumes = 1;
  std::array<std::int64_t, 3> shape_zyx{0, 0, 0};

  std::int64_t voxels() const { return shape_zyx[0] * shape_zyx[1] * shape_zyx[2]; }
};

/// Raw label values found in a one-volume map that `spec` (label_map or bitmask) does not allow,
/// each with its voxel count, ascending; empty when all are allowed.
struct UnexpectedValue {
  std::int64_t value = 0;
  std::int64_t voxels = 0;
};
std::vector<UnexpectedValue> find_unexpected_values(const LabelValuesView& label_map, const LabelSpec& spec);

/// label_map / bitmask formats: a one-volume raw map -> codes. Throws mlseg::Error listing the
/// unexpected values (fill in the file with Error::located).
CodeArray encode_label_values(const LabelValuesView& label_map, const LabelSpec& spec);

/// multihot4d: volume v - 1 is the channel whose label value is v (nonzero = inside).
CodeArray encode_multihot_values(const LabelValuesView& volumes, const LabelSpec& spec);

/// channel_masks: sets `channel`'s bit wherever any volume of `mask` is nonzero (an RGB-saved
/// mask counts wherever a component is). Throws std::invalid_argument when the grid differs.
void add_channel_mask(CodeArray& code, int channel, const LabelValuesView& mask);

}  // namespace mlseg
