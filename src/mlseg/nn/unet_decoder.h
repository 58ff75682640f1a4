#pragma once
// The U-Net decoder of dynamic-network-architectures (building_blocks/unet_decoder.py), shared by
// every encoder (PlainConvUNet's, ResidualEncoderUNet's): from the bottom up, a transposed conv
// (features[s] → features[s-1], kernel = stride = the encoder's stride of stage s), concatenation with
// the skip, a StackedConvBlocks (kernel of stage s-1), and a 1x1 head to num_classes per stage.
// Parameter names follow the Python ones ("decoder.transpconvs.0.weight", "decoder.stages.0.convs.0.
// conv.weight", "decoder.seg_layers.0.bias").
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "mlseg/nn/conv_blocks.h"

namespace mlseg {

/// What the decoder needs to know about its encoder: the encoder's per-stage lists, highest
/// resolution first, per-axis lists in tensor axis order.
struct UNetDecoderOptions {
  explicit UNetDecoderOptions(std::int64_t num_classes) : num_classes_(num_classes) {}

  /// Output channels of every segmentation head.
  TORCH_ARG(std::int64_t, num_classes);
  /// 2 or 3.
  TORCH_ARG(int, dimension) = 3;
  /// The encoder's output channels per stage (its skips).
  TORCH_ARG(std::vector<std::int64_t>, features_per_stage);
  /// The encoder's kernel size per stage and axis (the decoder stage above stage s uses s - 1's).
  TORCH_ARG(std::vector<std::vector<std::int64_t>>, kernel_sizes);
  /// The encoder's stride per stage and axis.
  TORCH_ARG(std::vector<std::vector<std::int64_t>>, strides);
  /// Convs per decoder stage, n_stages - 1 entries from the bottom up.
  TORCH_ARG(std::vector<int>, n_conv_per_stage_decoder);
  /// true: one output per decoder stage; false: only full resolution.
  TORCH_ARG(bool, deep_supervision) = false;
};

class UNetDecoderImpl : public torch::nn::Cloneable<UNetDecoderImpl> {
 public:
  /// Throws mlseg::Error when the lists disagree in length or with `dimension`.
  explicit UNetDecoderImpl(UNetDecoderOptions options);
  void reset() override;
  /// `skips`: the encoder's stage outputs, highest resolution first. Returns the heads' outputs,
  /// full resolution first: all n_stages - 1 with deep supervision, else only the full-resolution one.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& skips);
  /// Inference on the CPU: the full-resolution head's logits only, the conv blocks fused
  /// (ConvNormNonlin::fused_forward), the upsampling written into the concatenation and the head
  /// as matrix products (inference_kernels.h).
  torch::Tensor fused_forward(const std::vector<torch::Tensor>& skips);

  UNetDecoderOptions options;

 private:
  /// From the bottom up: transposed conv, concatenation with the skip, the stage's convs by
  /// `stage_call(stage, x)`, then `after_stage(d, x)`. Throws mlseg::Error for a wrong skip count.
  template <typename StageCall, typename AfterStage>
  void decode(const std::vector<torch::Tensor>& skips, StageCall&& stage_call, AfterStage&& after_stage);

  /// Throws mlseg::Error unless there is one skip per encoder stage.
  void check_skip_count(const std::vector<torch::Tensor>& skips) const;

  torch::nn::ModuleList stages_{nullptr}, transpconvs_{nullptr}, seg_layers_{nullptr};
  std::vector<torch::nn::AnyModule> transpconv_calls_, seg_layer_calls_;
  std::vector<ReusableBuffer> joined_buffers_;  ///< fused_forward's concatenations, kept for the next tile
};
TORCH_MODULE(UNetDecoder);

/// nnU-Net's InitWeights_He(1e-2) on every conv and transposed conv below `module`:
/// kaiming_normal_(a = 1e-2) weights, zero biases.
void initialize_he_weights(torch::nn::Module& module);

}  // namespace mlseg
