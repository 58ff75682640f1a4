#pragma once
// Process-wide settings of the C allocator (glibc malloc), applied once at the start of main.
//
// Training and prediction allocate and free the same large tensors every iteration (activations,
// gradients, patches: 100 KiB to tens of MiB). glibc's defaults serve every block above its
// mmap threshold (128 KiB at start, raised only by frees it sees) with a fresh mmap, and give the
// top of the heap back to the kernel whenever 128 KiB are free there; each iteration then pays
// page faults and zeroing for memory it just released. Measured on a 2-core CPU (Hippocampus,
// patch 40x56x40, batch 2, features 16-128): one epoch of 25 iterations 22.7 s with the defaults,
// 9.0 s with the settings below (12 s less system time; peak memory 628 MiB instead of 704 MiB).
// nnU-Net (Python, the same glibc) runs with the defaults.
namespace mlseg::core {

struct AllocatorOptions {
  // Blocks at least this large come from mmap; below, from the heap and reused. 32 MiB is the
  // most glibc's own adaptive threshold ever reaches on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX); the
  // activations of a CPU-sized patch are below it, so they are reused instead of mapped anew.
  long mmap_threshold_bytes = 32L << 20;
  // Free memory at the top of the heap is returned to the kernel only above this much (glibc
  // default 128 KiB). Memory stays with the process at its high-water mark, as with a caching
  // allocator; the process ends when its stage does.
  long trim_threshold_bytes = 1L << 30;
  // Extra memory requested whenever the heap grows (glibc default 128 KiB), so growth is rare.
  long top_pad_bytes = 64L << 20;
};

// Applies `options` unless the user set any of glibc's MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or MLSEG_DEFAULT_MALLOC=1 (keep glibc's defaults) in the
// environment. Does nothing on C libraries other than glibc. Returns whether it applied them.
bool tune_allocator(const AllocatorOptions& options = {});

}  // namespace mlseg::core
