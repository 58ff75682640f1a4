#pragma once
// ResidualEncoderUNet: nnU-Net's Residual Encoder network (dynamic-network-architectures
// architectures/unet.py, building_blocks/residual_encoders.py and residual.py), the network of
// nnU-Net's ResEnc M/L/XL presets. A stem (one conv-norm-LeakyReLU at stage 0's width), then per
// stage n_blocks_per_stage BasicBlockD residual blocks (only the first strided), and the shared
// UNetDecoder (one conv per decoder stage in the presets). Parameter names equal the Python ones
// ("encoder.stem.convs.0.conv.weight", "encoder.stages.1.blocks.0.conv1.conv.weight",
// "encoder.stages.1.blocks.0.skip.1.conv.weight", "decoder.seg_layers.0.bias"), so nnU-Net's
// state dicts load 1:1.
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "mlseg/nn/conv_blocks.h"
#include "mlseg/nn/segmentation_network.h"
#include "mlseg/nn/unet_decoder.h"

namespace mlseg {

/// arch_kwargs of nnU-Net's ResidualEncoderUNet (the presets: conv_bias True, InstanceNorm with
/// eps 1e-5 and affine, LeakyReLU, no dropout).
struct ResidualEncoderUNetOptions {
  ResidualEncoderUNetOptions(std::int64_t input_channels, std::int64_t num_classes)
      : input_channels_(input_channels), num_classes_(num_classes) {}

  TORCH_ARG(std::int64_t, input_channels);
  TORCH_ARG(std::int64_t, num_classes);
  TORCH_ARG(int, dimension) = 3;
  TORCH_ARG(int, n_stages) = 0;
  TORCH_ARG(std::vector<std::int64_t>, features_per_stage);
  TORCH_ARG(std::vector<std::vector<std::int64_t>>, kernel_sizes);
  TORCH_ARG(std::vector<std::vector<std::int64_t>>, strides);
  /// Residual blocks per encoder stage (presets: 1, 3, 4, 6, 6, 6, ...).
  TORCH_ARG(std::vector<int>, n_blocks_per_stage);
  /// Convs per decoder stage, n_stages - 1 entries (presets: 1).
  TORCH_ARG(std::vector<int>, n_conv_per_stage_decoder);
  TORCH_ARG(bool, deep_supervision) = false;
};

/// Checks every list against n_stages and dimension; throws mlseg::Error naming the option.
ResidualEncoderUNetOptions validated(ResidualEncoderUNetOptions options);

/// ResNet-D basic block: conv1 (strided, conv-norm-LeakyReLU), conv2 (conv-norm), plus the skip
/// (AvgPool of the stride when strided, then a 1x1 conv without bias and a norm when the width
/// changes), then LeakyReLU. Submodules "conv1", "conv2", "skip" as in Python.
class BasicBlockDImpl : public torch::nn::Cloneable<BasicBlockDImpl> {
 public:
  BasicBlockDImpl(int dimension, std::int64_t input_channels, std::int64_t output_channels,
                  std::vector<std::int64_t> kernel_size, std::vector<std::int64_t> stride);
  void reset() override;
  torch::Tensor forward(torch::Tensor x);
  /// Inference on the CPU: conv1 and conv2 fused (conv2's norm without activation), the skip,
  /// then LeakyReLU in place.
  torch::Tensor fused_forward(const torch::Tensor& x);
  /// nnU-Net's init_last_bn_before_add_to_0: conv2's norm weight and bias set to 0, so every
  /// block starts as its skip.
  void zero_last_norm();

 private:
  int dimension_;
  std::int64_t input_channels_, output_channels_;
  std::vector<std::int64_t> kernel_size_, stride_;
  ConvNormNonlin conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Sequential skip_{nullptr};  // empty: identity
};
TORCH_MODULE(BasicBlockD);

/// The encoder: "stem" then "stages.<s>.blocks.<b>"; forward returns every stage's output.
class ResidualEncoderImpl : public torch::nn::Cloneable<ResidualEncoderImpl> {
 public:
  explicit ResidualEncoderImpl(ResidualEncoderUNetOptions options);
  void reset() override;
  std::vector<torch::Tensor> forward(torch::Tensor x);
  /// The stem and every block fused (inference on the CPU).
  std::vector<torch::Tensor> fused_forward(torch::Tensor x);

  ResidualEncoderUNetOptions options;

 private:
  StackedConvBlocks stem_{nullptr};
  torch::nn::ModuleList stages_{nullptr};
  std::vector<torch::nn::Sequential> stage_blocks_;  // stages_[s]'s "blocks", held for forward
};
TORCH_MODULE(ResidualEncoder);

class ResidualEncoderUNetImpl : public torch::nn::Cloneable<ResidualEncoderUNetImpl>,
                                public UNetNetworkImpl<ResidualEncoderUNetImpl> {
 public:
  explicit ResidualEncoderUNetImpl(ResidualEncoderUNetOptions options);
  void reset() override;
  /// As PlainConvUNet::forward: logits per decoder stage (deep supervision) or full resolution only.
  std::vector<torch::Tensor> forward(torch::Tensor x) override;
  void set_deep_supervision(bool enabled) override;
  /// nnU-Net's ResidualEncoderUNet.initialize: InitWeights_He(1e-2), then every block's last norm to 0.
  void initialize_weights() override;

  std::string class_name() const override { return kResidualEncoderUNetClass; }
  /// The fused forward exists (fused_forward equals forward, tests/nn/fused_forward_test.cpp) but is
  /// not offered: on a 2-core AMD EPYC it was slower than the module's forward for ResEnc M
  /// (BM_SlidingWindow160_ResEncM 111 s fused vs 97 s), unlike PlainConvUNet's, whose stage-0
  /// tensors dominate. Sliding windows therefore run the module's forward.
  bool has_fused_forward() const override { return false; }
  torch::Tensor fused_forward(const torch::Tensor& x) override;

  ResidualEncoderUNetOptions options;
  ResidualEncoder encoder{nullptr};
  UNetDecoder decoder{nullptr};
};
TORCH_MODULE(ResidualEncoderUNet);

}  // namespace mlseg
