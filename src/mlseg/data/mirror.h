#pragma once
// Mirroring: the last training transform (nnU-Net's MirrorTransform), and the flips test-time
// augmentation undoes. Works in place on any [N, Z, Y, X] volume: images and code words alike.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "mlseg/labels/label_code.h"

namespace mlseg {

/// Flips `volume` ([N, Z, Y, X], contiguous CPU, element size 1, 2, 4 or 8 bytes) in place along
/// every spatial axis i with flip_zyx[i], in one pass.
void mirror_in_place(torch::Tensor& volume, const std::array<bool, 3>& flip_zyx);
void mirror_in_place(CodeVolume& codes, const std::array<bool, 3>& flip_zyx);

/// dst[x] = src[count - 1 - x] (dst and src distinct). Elements narrower than 8 bytes are
/// reversed eight bytes at a time: one load, an in-register reversal, one store.
template <typename T>
void reverse_copy_row(const T* src, std::int64_t count, T* dst) {
  constexpr std::int64_t kPerWord = static_cast<std::int64_t>(sizeof(std::uint64_t) / sizeof(T));
  std::int64_t x = 0;
#if defined(__SSE2__)
  if constexpr (sizeof(T) == 4) {
    // Four-byte elements (float images, 32-bit codes): four at a time, reversed by one shuffle
    // (a bit-exact move, whatever the bits).
    for (; x + 4 <= count; x += 4) {
      __m128 v = _mm_loadu_ps(reinterpret_cast<const float*>(src + count - x - 4));
      v = _mm_shuffle_ps(v, v, _MM_SHUFFLE(0, 1, 2, 3));
      _mm_storeu_ps(reinterpret_cast<float*>(dst + x), v);
    }
  }
#endif
  if constexpr (kPerWord > 1) {
    for (; x + kPerWord <= count; x += kPerWord) {
      std::uint64_t word;
      std::memcpy(&word, src + count - x - kPerWord, sizeof word);
      if constexpr (sizeof(T) == 1) {
        word = __builtin_bswap64(word);
      } else if constexpr (sizeof(T) == 2) {
        word = __builtin_bswap64(word);
        word = ((word >> 8) & 0x00ff00ff00ff00ffull) | ((word & 0x00ff00ff00ff00ffull) << 8);
      } else {
        word = (word >> 32) | (word << 32);
      }
      std::memcpy(dst + x, &word, sizeof word);
    }
  }
  for (; x < count; ++x) dst[x] = src[count - 1 - x];
}

}  // namespace mlseg
