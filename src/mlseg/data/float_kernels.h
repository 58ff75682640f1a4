#pragma once
// detail: the vectorisable float kernels of the intensity transforms (not part of the public API):
// moments in eight-lane blocks, log2 / exp2 approximations without libm calls, Box-Muller pairs.
// Inlined into the transforms' CPU clones (core/cpu_dispatch.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "mlseg/core/cpu_dispatch.h"

namespace mlseg::detail {

struct Moments {
  double mean = 0.0;
  double std = 0.0;  // unbiased, like torch.std
  float min = 0.0f;
  float max = 0.0f;
};

// Float partial sums in eight lanes over short blocks (vectorised), blocks summed in double.
// The sums are kept in an accumulator so that a pass that writes the data (gamma) can sum each
// block while it is still in L1 instead of reading the channel again; both orders of summation
// are the same, so fused and separate passes give identical moments.
constexpr int kLanes = 8;
constexpr std::int64_t kBlock = 1024;

// Eight float lanes as one value (GCC/Clang vector extension): the compiler maps it to two SSE
// registers or one AVX register, where the lane loops of a plain array were not always vectorised.
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

struct MomentSums {
  double total = 0.0, total_squares = 0.0;
  Lanes lo, hi;
  MomentSums() {
    for (int k = 0; k < kLanes; ++k) {
      lo[k] = std::numeric_limits<float>::infinity();
      hi[k] = -std::numeric_limits<float>::infinity();
    }
  }
  // One full block of kBlock values; kRange: also track min and max.
  template <bool kRange>
  MLSEG_ALWAYS_INLINE void add_block(const float* data) {
    Lanes sum = {}, sum_squares = {};
    for (std::int64_t j = 0; j < kBlock; j += kLanes) {
      Lanes v;  // unaligned load
      std::memcpy(&v, data + j, sizeof v);
      sum += v;
      sum_squares += v * v;
      if constexpr (kRange) {
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
    }
    for (int k = 0; k < kLanes; ++k) {
      total += sum[k];
      total_squares += sum_squares[k];
    }
  }
  // The last count < kBlock values.
  MLSEG_ALWAYS_INLINE void add_tail(const float* data, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) {
      const float v = data[i];
      total += v;
      total_squares += static_cast<double>(v) * v;
      lo[0] = std::min(lo[0], v);
      hi[0] = std::max(hi[0], v);
    }
  }
  Moments finish(std::int64_t n) const {
    Moments m;
    m.min = lo[0];
    m.max = hi[0];
    for (int k = 1; k < kLanes; ++k) {
      m.min = std::min(m.min, lo[k]);
      m.max = std::max(m.max, hi[k]);
    }
    m.mean = n > 0 ? total / static_cast<double>(n) : 0.0;
    m.std = n > 1 ? std::sqrt(std::max(0.0, (total_squares - total * m.mean) / static_cast<double>(n - 1))) : 0.0;
    return m;
  }
};

MLSEG_ALWAYS_INLINE Moments moments(const float* data, std::int64_t n) {
  MomentSums sums;
  std::int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) sums.add_block<true>(data + i);
  sums.add_tail(data + i, n - i);
  return sums.finish(n);
}

// Float approximations the compiler can vectorise (no libm calls), written without
// platform-dependent intrinsics so that results are the same everywhere.
inline float bits_to_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
inline std::uint32_t float_to_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// log2(x) for x > 0, absolute error below 3e-7 (series truncation 6e-8, the rest float
// rounding): exponent plus 2/ln2 atanh((m-1)/(m+1)), |t| <= 0.172 so three terms suffice.
struct Log2Parts {
  float exponent;
  float t;  // (m - 1) / (m + 1) for the mantissa m in [sqrt(2)/2, sqrt(2))
};

MLSEG_ALWAYS_INLINE Log2Parts log2_parts(float x) {
  const std::uint32_t bits = float_to_bits(x);
  float exponent = static_cast<float>(static_cast<int>((bits >> 23) & 0xffu) - 127);
  float mantissa = bits_to_float((bits & 0x7fffffu) | 0x3f800000u);  // [1, 2)
  // 1 when mantissa >= sqrt(2), by truncation: a float comparison here stops GCC vectorising.
  const float high = static_cast<float>(static_cast<int>(mantissa * 0.707106781f));
  mantissa *= 1.0f - 0.5f * high;
  exponent += high;
  return {exponent, (mantissa - 1.0f) / (mantissa + 1.0f)};
}

MLSEG_ALWAYS_INLINE float log2_from_parts(float exponent, float t) {
  const float t2 = t * t;
  const float series = t * (2.88539008f + t2 * (0.961796694f + t2 * (0.577078016f + t2 * 0.412198583f)));
  return exponent + series;
}

MLSEG_ALWAYS_INLINE float fast_log2(float x) {
  const Log2Parts parts = log2_parts(x);
  return log2_from_parts(parts.exponent, parts.t);
}

// 2^y, relative error below 3e-7 (y below -126 gives 2^-126): degree-5 fit at Chebyshev nodes
// on [-0.5, 0.5] (2.1e-7), the rest float rounding.
MLSEG_ALWAYS_INLINE float fast_exp2(float y) {
  y += static_cast<float>(y < -126.0f) * (-126.0f - y);  // arithmetic, not std::max: vectorises
  const int n = static_cast<int>(y + 126.5f) - 126;  // round half up (the operand is positive)
  const float f = y - static_cast<float>(n);          // [-0.5, 0.5]
  const float p =
      1.0f + f * (0.693147182f + f * (0.240221068f + f * (0.0555035696f + f * (0.00967603177f + f * 0.00133908633f))));
  return p * bits_to_float(static_cast<std::uint32_t>(n + 127) << 23);
}

// Standard normal pairs by Box-Muller from one 64-bit draw (two 24-bit uniforms).
MLSEG_ALWAYS_INLINE void normal_pair(std::uint64_t bits, float& first, float& second) {
  constexpr float kUnit = 1.0f / 16777216.0f;  // 2^-24
  constexpr float kLn2 = 0.693147181f, kHalfPi = 1.57079633f;
  const float u1 = static_cast<float>(static_cast<int>((static_cast<std::uint32_t>(bits >> 32) >> 8) + 1u)) * kUnit;  // (0, 1]
  const float u2 = static_cast<float>(static_cast<int>(static_cast<std::uint32_t>(bits) >> 8)) * kUnit;  // [0, 1)
  // sqrt(-2 ln u1) as s / sqrt(s): reciprocal square root by the bit-level first guess (relative
  // error below 3.5e-3) and two Newton steps (each squares the error: 2e-5, then below float
  // rounding); std::sqrt's errno branch would stop vectorisation. s = 0 gives 0.
  const float square = -2.0f * kLn2 * fast_log2(u1);
  float inverse = bits_to_float(0x5f3759dfu - (float_to_bits(square) >> 1));
  for (int step = 0; step < 2; ++step) inverse *= 1.5f - 0.5f * square * inverse * inverse;
  const float radius = square * inverse;
  // Angle 2 pi u2 = quadrant * pi/2 + a with |a| <= pi/4.
  const float w = 4.0f * u2;
  const int quadrant = static_cast<int>(w + 0.5f);
  const float a = (w - static_cast<float>(quadrant)) * kHalfPi, a2 = a * a;
  const float sin_a = a * (1.0f + a2 * (-1.66666667e-1f + a2 * (8.33333333e-3f + a2 * -1.98412698e-4f)));
  const float cos_a = 1.0f + a2 * (-0.5f + a2 * (4.16666667e-2f + a2 * (-1.38888889e-3f + a2 * 2.48015873e-5f)));
  const float odd = static_cast<float>(quadrant & 1), even = 1.0f - odd;
  const float sign = 1.0f - 2.0f * static_cast<float>((quadrant >> 1) & 1);
  first = radius * sign * (even * cos_a - odd * sin_a);
  second = radius * sign * (even * sin_a + odd * cos_a);
}

}  // namespace mlseg::detail
