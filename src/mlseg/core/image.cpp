#include "mlseg/core/image.h"

namespace mlseg {

std::string format_shape(const std::array<int64_t, 3>& shape_zyx) {
  return std::to_string(shape_zyx[0]) + " x " + std::to_string(shape_zyx[1]) + " x " +
         std::to_string(shape_zyx[2]);
}

}  // namespace mlseg
