#pragma once
// A fast 64-bit content hash, for finding duplicate cases (not cryptographic).
#include <cstddef>
#include <cstdint>

namespace mlseg {

std::uint64_t hash_bytes(const void* data, std::size_t size, std::uint64_t seed = 0);

}  // namespace mlseg
