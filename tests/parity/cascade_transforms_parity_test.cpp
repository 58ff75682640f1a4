// Parity (#24): the cascade's binary morphology (data/cascade_transforms.h, on the exact distance
// transform) against batchgeneratorsv2's binary_{dilation,erosion,opening,closing}_torch (an FFT
// convolution with skimage's ball / disk, zero padded), which nnU-Net's
// ApplyRandomBinaryOperatorTransform applies to the previous stage's channels. Integer radii 1..8,
// a 3D mask touching the patch border and a one-slice mask (the disk): identical voxels.
// Peer: tests/parity/peer/cascade_transforms.py.
//
// Intended difference: nnU-Net draws the radius from U(1, 8) and passes the real number to
// skimage's ball, which for a non-integer radius builds an even-sized element on a grid that is not
// voxel offsets (ball(2.7) is 6x6x6) and shifts the 'same' convolution's result by half a voxel;
// mlseg keeps the centred ball {dz² + dy² + dx² <= r²}, which agrees with skimage at every integer r.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/data/cascade_transforms.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

TEST(ParityCascadeTransforms, MorphologyMatchesBatchgeneratorsV2AtEveryIntegerRadius) {
  MLSEG_REQUIRE_PEER();
  testing::TempDir tmp;
  const auto peer = parity::run_peer("cascade_transforms.py", {(tmp / "peer").string()}, tmp / "peer");
  const std::pair<const char*, BinaryOperator> operators[] = {{"dilation", BinaryOperator::dilation},
                                                              {"erosion", BinaryOperator::erosion},
                                                              {"opening", BinaryOperator::opening},
                                                              {"closing", BinaryOperator::closing}};
  for (const char* mask_name : {"mask3d", "mask2d"}) {
    const torch::Tensor mask = peer.array(mask_name).to(torch::kBool);
    for (int radius = 1; radius <= 8; ++radius) {
      for (const auto& [name, op] : operators) {
        SCOPED_TRACE(std::string(mask_name) + " " + name + " radius " + std::to_string(radius));
        const torch::Tensor theirs = peer.array(std::string(mask_name) + "_" + name + "_" + std::to_string(radius)).to(torch::kBool);
        const torch::Tensor ours = apply_binary_operator(mask, op, radius);
        ASSERT_EQ(ours.sizes(), theirs.sizes());
        EXPECT_EQ(ours.ne(theirs).sum().item<std::int64_t>(), 0) << "voxels that differ of " << theirs.numel();
      }
    }
  }
}

}  // namespace
}  // namespace mlseg
