#include "mlseg/core/image.h"

#include <stdexcept>

namespace mlseg {

torch::Tensor tensor_from_buffer(const SharedBuffer& buffer, const std::vector<std::int64_t>& sizes,
                                 torch::ScalarType dtype) {
  std::int64_t elements = 1;
  for (std::int64_t size : sizes) elements *= size;
  const auto element_size = static_cast<std::int64_t>(torch::elementSize(dtype));
  if (elements * element_size > buffer.size) throw std::invalid_argument("tensor_from_buffer: buffer too small");
  if (reinterpret_cast<std::uintptr_t>(buffer.data) % static_cast<std::uintptr_t>(element_size) != 0) {
    throw std::invalid_argument("tensor_from_buffer: buffer not aligned for the element type");
  }
  std::shared_ptr<void> owner = buffer.owner;
  return torch::from_blob(buffer.data, sizes, [owner](void*) mutable { owner.reset(); },
                          torch::TensorOptions().dtype(dtype));
}

}  // namespace mlseg
