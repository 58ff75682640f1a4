#include "mlseg/core/allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

// The test binary runs training and prediction too: give it the allocator settings mlseg's
// executables start with, before any test allocates.
const bool kTestProcessTuned = mlseg::core::tune_allocator();

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

TEST(Allocator, AppliesItsSettingsOnGlibc) {
#if defined(__GLIBC__)
  EXPECT_TRUE(kTestProcessTuned);
  EXPECT_TRUE(mlseg::core::tune_allocator());
#else
  EXPECT_FALSE(mlseg::core::tune_allocator());
#endif
}

TEST(Allocator, LeavesTheUsersMallocSettingsAlone) {
  {
    ScopedEnv keep("MLSEG_DEFAULT_MALLOC", "1");
    EXPECT_FALSE(mlseg::core::tune_allocator());
  }
  {
    ScopedEnv own("MALLOC_TOP_PAD_", "131072");
    EXPECT_FALSE(mlseg::core::tune_allocator());
  }
}

}  // namespace
