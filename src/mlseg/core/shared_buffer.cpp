#include "mlseg/core/shared_buffer.h"

#include <cstring>
#include <new>

namespace mlseg {

SharedBuffer SharedBuffer::allocate(std::int64_t bytes) {
  SharedBuffer buffer;
  const auto size = static_cast<std::size_t>(bytes > 0 ? bytes : 1);
  std::shared_ptr<std::uint8_t[]> block(new std::uint8_t[size]);
  buffer.data = block.get();
  buffer.owner = std::shared_ptr<void>(block, block.get());
  buffer.size = bytes;
  return buffer;
}

SharedBuffer SharedBuffer::zeros(std::int64_t bytes) {
  SharedBuffer buffer = allocate(bytes);
  if (bytes > 0) std::memset(buffer.data, 0, static_cast<std::size_t>(bytes));
  return buffer;
}

}  // namespace mlseg
