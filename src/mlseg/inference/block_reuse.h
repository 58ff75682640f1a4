#pragma once
// Reuse of freed CPU tensor memory during a sliding window.
//
// Every tile's forward allocates and frees the same activations. glibc serves each block of 32 MiB
// or more (a 64^3 tile's 32-channel activation is exactly that; oneDNN's reorders of it too) with a
// fresh mmap and returns it at free, so every tile pays a page fault per 4 KiB for memory it just
// released: measured on the reference U-Net's sliding window (160^3, 64 tiles, 2-core VM), about
// 35,000 faults per tile, a third to a half of its time, and the main source of run-to-run spread.
// While a BlockReuseScope is alive, CPU tensor blocks of BlockReuseOptions' sizes are kept when
// freed and handed out again for the same size; the last scope to end gives them all back.
#include <cstddef>

namespace mlseg {

struct BlockReuseOptions {
  /// Smaller blocks come from glibc's heap, which reuses them already.
  static constexpr std::size_t kMinBlockBytes = 1u << 20;
  /// Larger blocks (whole-volume accumulators, slabs) are never kept: they are allocated once per
  /// volume, and keeping them would raise the peak of memory-bounded predictions.
  static constexpr std::size_t kMaxBlockBytes = std::size_t{256} << 20;
  /// At most this much freed memory is kept in all (a tile forward's working set is well below:
  /// ~300 MiB for the reference U-Net's 64^3 tile).
  static constexpr std::size_t kMaxKeptBytes = std::size_t{1} << 30;
};

/// RAII: freed CPU tensor blocks are reused while any scope is alive (process-wide; scopes nest and
/// may live on several threads). The first scope installs the reusing allocator as LibTorch's CPU
/// allocator; outside scopes it behaves as LibTorch's own (alloc_cpu / free_cpu).
/// MLSEG_BLOCK_REUSE=0 in the environment makes every scope inert (comparisons).
class BlockReuseScope {
 public:
  BlockReuseScope();
  ~BlockReuseScope();
  BlockReuseScope(const BlockReuseScope&) = delete;
  BlockReuseScope& operator=(const BlockReuseScope&) = delete;

 private:
  bool active_;
};

/// Bytes of freed blocks kept right now (0 outside scopes), and how many allocations a kept block
/// served since the process started (tests, benchmarks).
std::size_t reused_block_bytes_kept();
std::size_t reused_block_hits();

}  // namespace mlseg
