#include "mlseg/data/mirror.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

template <typename T>
void mirror_rows(T* data, std::int64_t planes, std::int64_t Z, std::int64_t Y, std::int64_t X,
                 const std::array<bool, 3>& flip) {
  const std::int64_t rows = Z * Y;
  std::vector<T> buffer(static_cast<std::size_t>(X));
  const std::size_t row_bytes = static_cast<std::size_t>(X) * sizeof(T);
  for (std::int64_t p = 0; p < planes; ++p) {
    T* volume = data + p * rows * X;
    // Row r = (z, y) trades places with its mirror row; each pair is visited once.
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t z = r / Y, y = r % Y;
      const std::int64_t mz = flip[0] ? Z - 1 - z : z, my = flip[1] ? Y - 1 - y : y;
      const std::int64_t m = mz * Y + my;
      if (m < r) continue;
      T* a = volume + r * X;
      T* b = volume + m * X;
      if (m == r) {
        if (!flip[2]) continue;
        std::memcpy(buffer.data(), a, row_bytes);
        reverse_copy_row(buffer.data(), X, a);
      } else if (flip[2]) {
        std::memcpy(buffer.data(), a, row_bytes);
        reverse_copy_row(b, X, a);
        reverse_copy_row(buffer.data(), X, b);
      } else {
        std::memcpy(buffer.data(), a, row_bytes);
        std::memcpy(a, b, row_bytes);
        std::memcpy(b, buffer.data(), row_bytes);
      }
    }
  }
}

}  // namespace

void mirror_in_place(torch::Tensor& volume, const std::array<bool, 3>& flip_zyx) {
  if (!volume.defined() || volume.dim() != 4 || !volume.is_contiguous() || !volume.device().is_cpu()) {
    throw Error("mirror_in_place needs a contiguous CPU tensor [N, Z, Y, X]", "pass .contiguous() CPU tensors");
  }
  if (!flip_zyx[0] && !flip_zyx[1] && !flip_zyx[2]) return;
  const std::int64_t N = volume.size(0), Z = volume.size(1), Y = volume.size(2), X = volume.size(3);
  switch (volume.element_size()) {
    case 1: mirror_rows(static_cast<std::uint8_t*>(volume.data_ptr()), N, Z, Y, X, flip_zyx); break;
    case 2: mirror_rows(static_cast<std::uint16_t*>(volume.data_ptr()), N, Z, Y, X, flip_zyx); break;
    case 4: mirror_rows(static_cast<std::uint32_t*>(volume.data_ptr()), N, Z, Y, X, flip_zyx); break;
    case 8: mirror_rows(static_cast<std::uint64_t*>(volume.data_ptr()), N, Z, Y, X, flip_zyx); break;
    default:
      throw Error("mirror_in_place: unsupported element size " + std::to_string(volume.element_size()),
                  "use a tensor of 1, 2, 4 or 8 byte elements");
  }
}

void mirror_in_place(CodeVolume& codes, const std::array<bool, 3>& flip_zyx) { mirror_in_place(codes.words, flip_zyx); }

}  // namespace mlseg
