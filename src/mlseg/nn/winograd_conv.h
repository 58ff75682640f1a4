#pragma once
// float32 3x3x3 convolution (stride 1, padding 1: every 3D U-Net's non-strided conv) through
// Winograd's minimal filtering F(4x4, 3x3) in the (y, x) plane and a direct sum over the three z taps.
//
// Why: a direct convolution spends 27 multiply-adds per output voxel and input-output channel pair;
// the fp32 forward of a 64^3 tile already runs at ~70 % of this CPU's FMA peak through oneDNN
// (README, issue #23), so only fewer multiplications make it faster. Here each 4x4 block of output
// rows costs 36 products per z tap instead of 16 x 9: 4x fewer. The products of all channel
// pairs are matrix products ([rows, 3*Cin] x [3*Cin, Cout] per Winograd point), run by a
// register-blocked kernel compiled for AVX-512, AVX2 and baseline x86-64 (chosen at run time).
//
// The work is cut into blocks of (sample, row of 4x4 tiles, tiles along x, slices along z) whose
// transformed input and products stay in the core's L2 cache, so nothing of the 2.25x larger
// Winograd-domain tensors ever goes to memory; the blocks run on LibTorch's threads.
//
// Results equal the direct convolution up to float rounding (relative error ~1e-6 of the output's
// scale; tests/nn/winograd_conv_test.cpp compares against at::convolution).
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace mlseg {

/// When the inference forward takes the Winograd route (inference_kernels.cpp); each bound a named
/// default, measured on the reference U-Net (AMD EPYC, 2 threads; bench BM_WinogradConv).
struct WinogradPolicy {
  /// Fewer input or output channels than this: the transforms cost more than the products save
  /// (the first conv of a network, 1-4 input channels).
  static constexpr std::int64_t kMinChannels = 16;
  /// Smaller (y, x) planes than this many voxels: too few tiles per slice for the products to
  /// beat oneDNN's direct kernel (4^3 bottleneck stages).
  static constexpr std::int64_t kMinPlaneVoxels = 8 * 8;
};

/// Whether x [B, Cin, D, H, W] (float32, CPU) convolved with weight [Cout, Cin, 3, 3, 3] at stride 1
/// and padding 1 qualifies for winograd_conv3d under WinogradPolicy and the process-wide switch.
bool winograd_applicable(const torch::Tensor& x, const torch::Tensor& weight, c10::IntArrayRef stride,
                         c10::IntArrayRef padding);

/// Process-wide switch (default on): off sends every convolution to the direct route (benchmarks
/// compare both; MLSEG_WINOGRAD=0 in the environment turns it off at start).
void set_winograd_enabled(bool enabled);
bool winograd_enabled();

/// A conv weight [Cout, Cin, 3, 3, 3] in the Winograd domain, laid out for the product kernel.
struct WinogradWeights {
  std::int64_t in_channels = 0, out_channels = 0;
  std::int64_t padded_in = 0, padded_out = 0;  ///< channels rounded up to the kernel's widths
  std::vector<float> panels;                  ///< [36 points][Cout/32 panels][3 * padded_in][32]
};

/// The transformed weight, computed again only when the weight changes (another tensor, or an
/// in-place update: its version counter).
class WinogradWeightCache {
 public:
  const WinogradWeights& get(const torch::Tensor& weight);

 private:
  WinogradWeights weights_;
  const void* source_ = nullptr;
  std::int64_t version_ = -1;
};

/// weight [Cout, Cin, 3, 3, 3] transformed for winograd_conv3d.
WinogradWeights transform_winograd_weights(const torch::Tensor& weight);

/// conv3d(x, weight, bias, stride 1, padding 1) of x [B, Cin, D, H, W] float32 on the CPU; bias [Cout]
/// or undefined. Written into `out` when given (contiguous float32 [B, Cout, D, H, W]), else into a
/// new tensor. Throws mlseg::Error when x does not match the weights or out.
torch::Tensor winograd_conv3d(const torch::Tensor& x, const WinogradWeights& weights, const torch::Tensor& bias,
                              torch::Tensor out = {});

}  // namespace mlseg
