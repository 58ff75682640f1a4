#pragma once
// The convolutions of the CPU inference forward (fused_forward of the plain and residual U-Nets),
// float32, no autograd. Same arithmetic as the modules' forward, with three changes of route
// measured on the reference network (3D PlainConvUNet 32-320, one 64^3 tile, 2 threads):
//  - the 3x3x3 stride-1 convolutions of float32 inference with at least 16 channels run as
//    Winograd F(4x4, 3x3) (winograd_conv.h): 4x fewer multiplications than any direct kernel;
//  - every k x k x k convolution goes to oneDNN (at::mkldnn_convolution). ATen's own heuristic
//    sends a single tile's deep stages (C·D·H ≤ 20480: 256 x 8^3, 320 x 4^3) to its im2col
//    + BLAS convolution, several times slower there;
//  - the decoder's transposed convolution, whose kernel equals its stride (nnU-Net's upsampling),
//    is one matrix product per sample, [Cout·k, Cin] x [Cin, voxels], whose rows are then placed at
//    their offsets of the upsampled grid — ATen runs it as col2im over a zero-filled output;
//    it writes straight into the decoder's concatenation buffer, so the upsampled tensor is never
//    copied into the concatenation;
//  - the 1x1 segmentation head is one matrix product per sample.
// Without oneDNN in the LibTorch build (or with it disabled) the convolution is at::convolution.
// bfloat16 activations (bf16 inference) run the same route with the parameters cast to bfloat16.
#include <torch/types.h>

#include <cstdint>

#include "mlseg/nn/winograd_conv.h"

namespace mlseg {

/// A parameter in another storage type (bf16 inference), cast again only when the parameter
/// changes (another tensor, or an in-place update: its version counter).
class CastParameterCache {
 public:
  /// `parameter` itself when it already has `type` (or is undefined), else the cached cast.
  torch::Tensor get(const torch::Tensor& parameter, torch::ScalarType type);

 private:
  torch::Tensor cast_;
  const void* source_ = nullptr;
  std::int64_t version_ = -1;
};

/// A tensor reused from one inference forward to the next while nobody else holds it (no other
/// tensor or view shares its storage): a tile's activations are tens of MiB, and glibc maps every
/// block of 32 MiB or more anew, so a fresh one costs a page fault per 4 KiB (measured on the 64^3
/// tile's 32-channel convolutions: 4x their time on a 2-core VM). Not for concurrent forwards of
/// one module (neither are the parameter caches).
class ReusableBuffer {
 public:
  /// An uninitialised tensor of `sizes` and `options`: the kept one when it fits and is free.
  torch::Tensor take(c10::IntArrayRef sizes, const torch::TensorOptions& options);

 private:
  torch::Tensor buffer_;
};

/// Convolution of x [B, Cin, spatial...] (2 or 3 spatial axes) with weight [Cout, Cin, k...],
/// optional bias [Cout] (undefined = none), `stride` and `padding` per axis. weight and bias in
/// x's type (float32, or bfloat16). With a `winograd` cache, a float32 3x3x3 stride-1 conv that
/// qualifies (winograd_conv.h) runs as Winograd F(4x4, 3x3) with the cache's transformed weight,
/// into `output`'s tensor when given.
torch::Tensor inference_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             c10::IntArrayRef stride, c10::IntArrayRef padding, WinogradWeightCache* winograd = nullptr,
                             ReusableBuffer* output = nullptr);

/// Transposed convolution with kernel == stride of x [B, Cin, s...] (weight [Cin, Cout, k...],
/// bias [Cout]), written into `out` [B, Cout, s·k...]: a view whose samples are each contiguous,
/// e.g. the first Cout channels of a concatenation buffer. Throws mlseg::Error on other shapes.
void transposed_conv_into(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          const torch::Tensor& out);

/// 1x1 convolution (weight [Cout, Cin, 1...], bias [Cout]) of x [B, Cin, spatial...].
torch::Tensor pointwise_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace mlseg
