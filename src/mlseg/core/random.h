#pragma once
// SplitMix64: a tiny seeded generator that gives the same numbers on every platform and standard
// library (std:: distributions do not), for phantoms, sampling and tie-breaking.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace mlseg {

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Integer in [0, n); n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  /// Standard normal (Box-Muller).
  double normal() {
    const double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
  }

 private:
  std::uint64_t state_;
};

/// The seed of stream (a, b) of `seed`, e.g. (batch, sample): SplitMix64's output function applied
/// to seed, then a, then b, so that every (a, b) gets a stream unrelated to its neighbours'.
/// (Seeding SplitMix64 with seed + k times its increment, or seed XOR such a multiple, only shifts
/// one stream: stream k's n-th number is then often stream 0's (n + k)-th.) Callers drawing
/// different things for the same (a, b) pass different `seed`s (e.g. seed XOR a constant of theirs).
inline std::uint64_t stream_seed(std::uint64_t seed, std::int64_t a, std::int64_t b) {
  std::uint64_t h = SplitMix64(seed).next();
  h = SplitMix64(h ^ static_cast<std::uint64_t>(a)).next();
  return SplitMix64(h ^ (static_cast<std::uint64_t>(b) * 0xd1b54a32d192ed03ULL)).next();
}

}  // namespace mlseg
