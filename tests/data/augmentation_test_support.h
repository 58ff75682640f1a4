#pragma once
// Synthetic samples for the augmentation tests: spheres with known labels, random codes.
#include <torch/torch.h>

#include <array>
#include <cstdint>

#include "mlseg/core/random.h"
#include "mlseg/labels/label_code.h"

namespace mlseg::testing {

/// Sets `bits` on every voxel of `codes` within `radius` of `centre_zyx` (voxel coordinates) and,
/// when `image` is defined, sets image channel 0 to `value` there.
inline void paint_sphere(CodeVolume& codes, torch::Tensor image, const std::array<double, 3>& centre_zyx,
                         double radius, std::int64_t bits, float value = 1.0f) {
  const auto shape = codes.shape_zyx();
  auto words = codes.words.to(torch::kInt64);
  auto word = words.accessor<std::int64_t, 4>();
  for (std::int64_t z = 0; z < shape[0]; ++z) {
    for (std::int64_t y = 0; y < shape[1]; ++y) {
      for (std::int64_t x = 0; x < shape[2]; ++x) {
        const double dz = z - centre_zyx[0], dy = y - centre_zyx[1], dx = x - centre_zyx[2];
        if (dz * dz + dy * dy + dx * dx > radius * radius) continue;
        word[0][z][y][x] |= bits;
        if (image.defined()) image[0][z][y][x] = value;
      }
    }
  }
  codes.words = words.to(codes.words.scalar_type());
}

/// A [channels, Z, Y, X] image of seeded uniform noise.
inline torch::Tensor random_image(std::int64_t channels, const std::array<std::int64_t, 3>& shape, std::uint64_t seed) {
  torch::Tensor image = torch::empty({channels, shape[0], shape[1], shape[2]}, torch::kFloat32);
  SplitMix64 rng(seed);
  float* data = image.data_ptr<float>();
  for (std::int64_t i = 0; i < image.numel(); ++i) data[i] = static_cast<float>(rng.uniform());
  return image;
}

/// A code volume of `channels` channels with random bit patterns (ignore flag excluded).
inline CodeVolume random_codes(int channels, const std::array<std::int64_t, 3>& shape, std::uint64_t seed) {
  CodeVolume codes = empty_code_volume(shape, channels);
  SplitMix64 rng(seed);
  auto words = torch::empty({1, shape[0], shape[1], shape[2]}, torch::kInt64);
  std::int64_t* data = words.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < words.numel(); ++i) {
    data[i] = static_cast<std::int64_t>(rng.below(std::size_t{1} << channels));
  }
  codes.words = words.to(codes.words.scalar_type());
  return codes;
}

}  // namespace mlseg::testing
