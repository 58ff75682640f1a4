#include "mlseg/core/content_hash.h"

#include <cstring>

namespace mlseg {
namespace {

inline std::uint64_t mix(std::uint64_t value) {
  // splitmix64 finaliser: good avalanche for 8-byte words.
  value ^= value >> 30;
  value *= 0xbf58476d1ce4e5b9ULL;
  value ^= value >> 27;
  value *= 0x94d049bb133111ebULL;
  value ^= value >> 31;
  return value;
}

}  // namespace

std::uint64_t hash_bytes(const void* data, std::size_t size, std::uint64_t seed) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint64_t hash = mix(seed ^ (size * 0x9e3779b97f4a7c15ULL));
  std::size_t offset = 0;
  for (; offset + 8 <= size; offset += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes + offset, 8);
    hash = mix(hash ^ word) + 0x9e3779b97f4a7c15ULL;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, bytes + offset, size - offset);
  return mix(hash ^ tail ^ (size - offset));
}

}  // namespace mlseg
