#pragma once
// The building blocks of nnU-Net's plain networks (dynamic-network-architectures
// building_blocks/simple_conv_blocks.py): conv → InstanceNorm → LeakyReLU, and a stack of them.
// 2D and 3D from one implementation; submodule names follow the Python ones ("conv", "norm",
// "convs") so that parameter names line up with nnU-Net's state dicts.
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "mlseg/nn/inference_kernels.h"

namespace mlseg {

/// nnU-Net's fixed choices for its plain networks (PlainConvUNet arch_kwargs from the planner).
constexpr double kInstanceNormEps = 1e-5;
constexpr double kLeakyReluSlope = 1e-2;

/// ConvNd(bias, padding (k-1)/2 per axis, `stride`) → InstanceNormNd(eps 1e-5, affine) →
/// LeakyReLU(0.01, inplace). `dimension` is 2 or 3; `kernel_size` and `stride` have one entry
/// per axis. Without `nonlin` it ends at the norm, without `bias` the conv has none (the residual
/// blocks' second conv and their 1x1 projection, dynamic-network-architectures' ConvDropoutNormReLU
/// with nonlin=None / conv_bias=False).
class ConvNormNonlinImpl : public torch::nn::Cloneable<ConvNormNonlinImpl> {
 public:
  ConvNormNonlinImpl(int dimension, std::int64_t input_channels, std::int64_t output_channels,
                     std::vector<std::int64_t> kernel_size, std::vector<std::int64_t> stride, bool bias = true,
                     bool nonlin = true);
  void reset() override;
  torch::Tensor forward(torch::Tensor x);
  /// Inference on the CPU: the conv (inference_kernels.h), then the norm and LeakyReLU fused in
  /// place (fused_norm.h). float32 x: the module's result up to float rounding; bfloat16 x: the
  /// conv in bfloat16 (parameters cast once), the norm's arithmetic in float.
  torch::Tensor fused_forward(const torch::Tensor& x);

 private:
  int dimension_;
  std::int64_t input_channels_, output_channels_;
  std::vector<std::int64_t> kernel_size_, stride_;
  bool bias_, has_nonlin_;
  torch::nn::AnyModule conv_, norm_, nonlin_;
  CastParameterCache weight_cache_, bias_cache_;  ///< bf16 copies of the conv's parameters
  WinogradWeightCache winograd_cache_;             ///< the weight in the Winograd domain (float32 3x3x3)
  ReusableBuffer output_buffer_;                   ///< the Winograd route's output, kept for the next tile
};
TORCH_MODULE(ConvNormNonlin);

/// `num_convs` ConvNormNonlin blocks; only the first has `first_stride` (nnU-Net's
/// StackedConvBlocks). Registered as "convs.<i>".
class StackedConvBlocksImpl : public torch::nn::Cloneable<StackedConvBlocksImpl> {
 public:
  StackedConvBlocksImpl(int num_convs, int dimension, std::int64_t input_channels, std::int64_t output_channels,
                        std::vector<std::int64_t> kernel_size, std::vector<std::int64_t> first_stride);
  void reset() override;
  torch::Tensor forward(torch::Tensor x);
  /// Every block's fused_forward in turn.
  torch::Tensor fused_forward(torch::Tensor x);

 private:
  int num_convs_, dimension_;
  std::int64_t input_channels_, output_channels_;
  std::vector<std::int64_t> kernel_size_, first_stride_;
  torch::nn::Sequential convs_{nullptr};
};
TORCH_MODULE(StackedConvBlocks);

}  // namespace mlseg
