#pragma once
// PlainConvUNet: nnU-Net v2's default network (dynamic-network-architectures
// architectures/unet.py), 2D and 3D. Strided-conv encoder, transposed-conv decoder with
// concatenated skips, a 1x1 segmentation head per decoder stage, He initialisation (a = 1e-2).
// Parameter names follow the Python module tree ("encoder.stages.0.0.convs.0.conv.weight",
// "decoder.transpconvs.0.weight", "decoder.seg_layers.0.bias", ...).
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
#include "mlseg/nn/segmentation_network.h"
#include "mlseg/nn/unet_decoder.h"

namespace mlseg {

/// Per-stage lists have n_stages entries (decoder lists n_stages - 1); per-axis lists have
/// `dimension` entries, in tensor axis order (z, y, x).
struct PlainConvUNetOptions {
  PlainConvUNetOptions(std::int64_t input_channels, std::int64_t num_classes)
      : input_channels_(input_channels), num_classes_(num_classes) {}

  /// Image channels (modalities) in the input.
  TORCH_ARG(std::int64_t, input_channels);
  /// Output channels of every segmentation head (sigmoid: C; softmax: C + 1 with background).
  TORCH_ARG(std::int64_t, num_classes);
  /// 2 (Conv2d, input [B, C, Y, X]) or 3 (Conv3d, input [B, C, Z, Y, X]).
  TORCH_ARG(int, dimension) = 3;
  TORCH_ARG(int, n_stages) = 0;
  /// Output channels of each encoder stage (nnU-Net: min(32 * 2^s, 320) in 3D, 512 cap in 2D).
  TORCH_ARG(std::vector<std::int64_t>, features_per_stage);
  /// Kernel size per stage and axis (odd; 1 or 3 in nnU-Net plans). Padding is (k - 1) / 2.
  TORCH_ARG(std::vector<std::vector<std::int64_t>>, kernel_sizes);
  /// Stride of the first conv of each stage, per axis (stage 0 is usually all 1s). The decoder's
  /// transposed convs use the same value as kernel and stride.
  TORCH_ARG(std::vector<std::vector<std::int64_t>>, strides);
  /// Convs per encoder stage; empty = 2 in every stage (nnU-Net's default).
  TORCH_ARG(std::vector<int>, n_conv_per_stage);
  /// Convs per decoder stage (n_stages - 1 entries, from the bottom up); empty = 2 in every stage.
  TORCH_ARG(std::vector<int>, n_conv_per_stage_decoder);
  /// true: forward returns one output per decoder stage; false: only full resolution
  /// (dynamic-network-architectures' default is false; nnU-Net trains with true).
  TORCH_ARG(bool, deep_supervision) = false;
};

/// The encoder: stage s = StackedConvBlocks whose first conv has stride strides[s].
/// forward returns every stage's output (the skips), highest resolution first.
class PlainConvEncoderImpl : public torch::nn::Cloneable<PlainConvEncoderImpl> {
 public:
  explicit PlainConvEncoderImpl(PlainConvUNetOptions options);
  void reset() override;
  std::vector<torch::Tensor> forward(torch::Tensor x);
  /// Every stage's StackedConvBlocks::fused_forward (inference on the CPU).
  std::vector<torch::Tensor> fused_forward(torch::Tensor x);

  PlainConvUNetOptions options;

 private:
  torch::nn::ModuleList stages_{nullptr};
  std::vector<StackedConvBlocks> stage_convs_;  // stages_[s]'s conv stack, held for forward
};
TORCH_MODULE(PlainConvEncoder);


class PlainConvUNetImpl : public torch::nn::Cloneable<PlainConvUNetImpl>, public UNetNetworkImpl<PlainConvUNetImpl> {
 public:
  /// Throws mlseg::Error when the lists disagree with n_stages or dimension.
  explicit PlainConvUNetImpl(PlainConvUNetOptions options);
  void reset() override;

  /// x: [B, input_channels, (Z,) Y, X], each spatial size divisible by the product of strides on
  /// that axis. Returns logits [B, num_classes, ...]: with deep supervision one tensor per
  /// decoder stage, element i at input size / (cumulative stride of stage i), full resolution
  /// first (n_stages - 1 tensors); without, a single full-resolution tensor.
  std::vector<torch::Tensor> forward(torch::Tensor x) override;

  /// nnU-Net switches deep supervision off for inference and back on for training.
  void set_deep_supervision(bool enabled) override;

  /// nnU-Net's InitWeights_He(1e-2): kaiming_normal_(a = 1e-2) on conv and transposed-conv
  /// weights, zero biases. Called by the constructor and reset().
  void initialize_weights() override;

  std::string class_name() const override { return kPlainConvUNetClass; }
  bool has_fused_forward() const override { return true; }
  torch::Tensor fused_forward(const torch::Tensor& x) override;

  PlainConvUNetOptions options;
  PlainConvEncoder encoder{nullptr};
  UNetDecoder decoder{nullptr};
};
TORCH_MODULE(PlainConvUNet);

/// The decoder of a PlainConvUNet of `options` (its encoder's lists).
UNetDecoderOptions decoder_options(const PlainConvUNetOptions& options);

/// Fills empty conv counts with nnU-Net's default (2) and checks every list against n_stages and
/// dimension; throws mlseg::Error naming the offending option.
PlainConvUNetOptions validated(PlainConvUNetOptions options);

/// Number of scalar parameters (conv weights and biases, norm affine parameters).
std::int64_t count_parameters(const torch::nn::Module& module);

}  // namespace mlseg
