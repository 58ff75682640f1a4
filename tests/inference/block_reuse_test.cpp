// Freed CPU tensor blocks are reused within a BlockReuseScope (the sliding window's tiles), not
// outside one, only for the kept size range, and all given back when the last scope ends.
#include "mlseg/inference/block_reuse.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

using namespace mlseg;

TEST(BlockReuse, ATileSizedBlockFreedInAScopeServesTheNextAllocationOfItsSize) {
  const std::int64_t floats = 3 << 20;  // 12 MiB: in the kept range
  const BlockReuseScope scope;
  const std::size_t hits_before = reused_block_hits();
  void* first = nullptr;
  {
    torch::Tensor a = torch::empty({floats});
    first = a.data_ptr();
    a.fill_(1.0f);
  }
  EXPECT_GE(reused_block_bytes_kept(), static_cast<std::size_t>(floats) * sizeof(float));
  torch::Tensor b = torch::zeros({floats});
  EXPECT_EQ(b.data_ptr(), first);
  EXPECT_EQ(reused_block_hits(), hits_before + 1);
  EXPECT_EQ(b.sum().item<float>(), 0.0f);  // reused memory is still initialised by the op
  torch::Tensor c = torch::empty({floats});  // nothing kept of that size now: a new block
  EXPECT_NE(c.data_ptr(), b.data_ptr());
}

TEST(BlockReuse, NothingIsKeptOutsideScopesOrOutsideTheSizeRange) {
  { const BlockReuseScope scope; }
  {
    torch::Tensor a = torch::empty({3 << 20});
  }
  EXPECT_EQ(reused_block_bytes_kept(), 0u);
  {
    const BlockReuseScope scope;
    {
      torch::Tensor small = torch::empty({1000});
      torch::Tensor huge = torch::empty({static_cast<std::int64_t>(BlockReuseOptions::kMaxBlockBytes / sizeof(float)) + 1024});
    }
    EXPECT_EQ(reused_block_bytes_kept(), 0u);
    {
      torch::Tensor a = torch::empty({3 << 20});
    }
    EXPECT_GT(reused_block_bytes_kept(), 0u);
  }
  EXPECT_EQ(reused_block_bytes_kept(), 0u);  // the last scope gave everything back
}

}  // namespace
