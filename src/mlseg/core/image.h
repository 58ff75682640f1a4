#pragma once
// Image: one array type for every stage — a [C, Z, Y, X] tensor plus its Geometry.
// 2D images are [C, 1, Y, X].
#include <torch/types.h>

#include <array>
#include <string>

#include "mlseg/core/geometry.h"

namespace mlseg {

struct Image {
  torch::Tensor data;  ///< [C, Z, Y, X]
  Geometry geometry;

  int64_t num_channels() const { return data.size(0); }
  std::array<int64_t, 3> shape_zyx() const { return {data.size(1), data.size(2), data.size(3)}; }
  bool is_2d() const { return data.size(1) == 1; }
};

/// "155 x 240 x 240" (z x y x x).
std::string format_shape(const std::array<int64_t, 3>& shape_zyx);

}  // namespace mlseg
