#include "mlseg/preprocessing/crop.h"

#include <algorithm>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg {

CropBox nonzero_bounding_box(const torch::Tensor& image) {
  const auto data = image.to(torch::kFloat).contiguous();
  const int64_t channels = data.size(0), nz = data.size(1), ny = data.size(2), nx = data.size(3);
  const float* values = data.data_ptr<float>();
  std::array<int64_t, 3> low{nz, ny, nx}, high{-1, -1, -1};
  const int64_t plane = ny * nx, volume = nz * plane;
  for (int64_t c = 0; c < channels; ++c) {
    const float* channel = values + c * volume;
    for (int64_t z = 0; z < nz; ++z) {
      for (int64_t y = 0; y < ny; ++y) {
        const float* row = channel + z * plane + y * nx;
        int64_t first = -1, last = -1;
        for (int64_t x = 0; x < nx; ++x) {
          if (row[x] != 0.0f) { first = x; break; }
        }
        if (first < 0) continue;
        for (int64_t x = nx - 1; x >= first; --x) {
          if (row[x] != 0.0f) { last = x; break; }
        }
        low[0] = std::min(low[0], z); high[0] = std::max(high[0], z);
        low[1] = std::min(low[1], y); high[1] = std::max(high[1], y);
        low[2] = std::min(low[2], first); high[2] = std::max(high[2], last);
      }
    }
  }
  if (high[0] < 0) return CropBox{{0, 0, 0}, {nz, ny, nx}};
  return CropBox{low, {high[0] + 1, high[1] + 1, high[2] + 1}};
}

torch::Tensor filled_nonzero_mask(const torch::Tensor& image) {
  const auto nonzero = (image != 0).any(0).contiguous();  // [Z, Y, X] bool
  const int64_t nz = nonzero.size(0), ny = nonzero.size(1), nx = nonzero.size(2);
  const bool* inside = nonzero.data_ptr<bool>();
  // Flood the background from the border; what it cannot reach is a hole.
  std::vector<uint8_t> outside(static_cast<size_t>(nz * ny * nx), 0);
  std::vector<int64_t> stack;
  auto push = [&](int64_t index) {
    if (!inside[index] && !outside[index]) {
      outside[index] = 1;
      stack.push_back(index);
    }
  };
  for (int64_t z = 0; z < nz; ++z)
    for (int64_t y = 0; y < ny; ++y)
      for (int64_t x = 0; x < nx; ++x)
        if (z == 0 || y == 0 || x == 0 || z == nz - 1 || y == ny - 1 || x == nx - 1) push((z * ny + y) * nx + x);
  while (!stack.empty()) {
    const int64_t index = stack.back();
    stack.pop_back();
    const int64_t x = index % nx, y = (index / nx) % ny, z = index / (nx * ny);
    if (x > 0) push(index - 1);
    if (x + 1 < nx) push(index + 1);
    if (y > 0) push(index - nx);
    if (y + 1 < ny) push(index + nx);
    if (z > 0) push(index - nx * ny);
    if (z + 1 < nz) push(index + nx * ny);
  }
  auto mask = torch::empty({nz, ny, nx}, torch::kBool);
  bool* out = mask.data_ptr<bool>();
  for (int64_t i = 0; i < nz * ny * nx; ++i) out[i] = !outside[static_cast<size_t>(i)];
  return mask;
}

torch::Tensor crop_to_box(const torch::Tensor& volume, const CropBox& box) {
  return volume.slice(1, box.begin[0], box.end[0])
      .slice(2, box.begin[1], box.end[1])
      .slice(3, box.begin[2], box.end[2])
      .contiguous();
}

torch::Tensor uncrop_from_box(const torch::Tensor& cropped, const CropBox& box,
                              const std::array<std::int64_t, 3>& full_shape_zyx, double fill) {
  const auto shape = box.shape();
  if (cropped.size(1) != shape[0] || cropped.size(2) != shape[1] || cropped.size(3) != shape[2]) {
    throw Error("the cropped volume's shape does not match its crop box",
                "pass the crop box recorded with this volume (CASE.json crop_box)");
  }
  auto full = torch::full({cropped.size(0), full_shape_zyx[0], full_shape_zyx[1], full_shape_zyx[2]}, fill,
                          cropped.options());
  full.slice(1, box.begin[0], box.end[0]).slice(2, box.begin[1], box.end[1]).slice(3, box.begin[2], box.end[2]).copy_(cropped);
  return full;
}

}  // namespace mlseg
