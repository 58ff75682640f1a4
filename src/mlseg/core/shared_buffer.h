#pragma once
// SharedBuffer: a contiguous CPU byte range kept alive by a shared owner. The torch-free layers
// (io's readers, label codes, metrics, evaluate) hold pixels and codes in it; the tensor layers
// wrap the same memory without a copy (mlseg/core/image.h: tensor_from_buffer).
#include <cstdint>
#include <memory>

namespace mlseg {

struct SharedBuffer {
  std::shared_ptr<void> owner;  ///< keeps `data` alive (a heap block, or a tensor's storage)
  std::uint8_t* data = nullptr;
  std::int64_t size = 0;  ///< bytes

  /// `bytes` of uninitialised memory, aligned for any scalar type (16 bytes).
  static SharedBuffer allocate(std::int64_t bytes);
  /// `bytes` of zeroed memory.
  static SharedBuffer zeros(std::int64_t bytes);

  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data);
  }
  bool empty() const { return data == nullptr; }
};

}  // namespace mlseg
