#pragma once
// Image: the tensor pipeline's array type — a [C, Z, Y, X] tensor plus its Geometry.
// 2D images are [C, 1, Y, X]. (The torch-free layers hold pixels in a SharedBuffer instead;
// tensor_from_buffer wraps one without copying.)
#include <torch/types.h>

#include <array>
#include <string>
#include <vector>

#include "mlseg/core/geometry.h"
#include "mlseg/core/shared_buffer.h"

namespace mlseg {

struct Image {
  torch::Tensor data;  ///< [C, Z, Y, X]
  Geometry geometry;

  int64_t num_channels() const { return data.size(0); }
  std::array<int64_t, 3> shape_zyx() const { return {data.size(1), data.size(2), data.size(3)}; }
  bool is_2d() const { return data.size(1) == 1; }
};

/// A CPU tensor of `sizes` and `dtype` on the buffer's memory (no copy; the tensor keeps the
/// buffer alive). The buffer must hold at least prod(sizes) elements, aligned for `dtype`.
torch::Tensor tensor_from_buffer(const SharedBuffer& buffer, const std::vector<std::int64_t>& sizes,
                                 torch::ScalarType dtype);

}  // namespace mlseg
