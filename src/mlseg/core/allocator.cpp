#include "mlseg/core/allocator.h"

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mlseg::core {

namespace {

bool user_chose_allocator_settings() {
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  const char* keep_defaults = std::getenv("MLSEG_DEFAULT_MALLOC");
  return keep_defaults != nullptr && std::strcmp(keep_defaults, "1") == 0;
}

}  // namespace

bool tune_allocator(const AllocatorOptions& options) {
#if defined(__GLIBC__)
  if (user_chose_allocator_settings()) return false;
  // Each call returns 0 when glibc refuses the value; the others still apply.
  const bool mmap_set = mallopt(M_MMAP_THRESHOLD, static_cast<int>(options.mmap_threshold_bytes)) == 1;
  const bool trim_set = mallopt(M_TRIM_THRESHOLD, static_cast<int>(options.trim_threshold_bytes)) == 1;
  const bool pad_set = mallopt(M_TOP_PAD, static_cast<int>(options.top_pad_bytes)) == 1;
  return mmap_set && trim_set && pad_set;
#else
  (void)options;
  return false;
#endif
}

}  // namespace mlseg::core
