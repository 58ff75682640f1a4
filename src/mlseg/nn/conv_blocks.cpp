#include "mlseg/nn/conv_blocks.h"

// LibTorch 1.13's modules/instancenorm.h uses the functional without including it.
#include <torch/nn/functional/instancenorm.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>

#include <string>

#include "mlseg/core/error.h"
#include "mlseg/nn/fused_norm.h"
#include "mlseg/nn/inference_kernels.h"

namespace mlseg {
namespace {

std::vector<std::int64_t> same_padding(const std::vector<std::int64_t>& kernel_size) {
  std::vector<std::int64_t> padding;
  for (std::int64_t k : kernel_size) padding.push_back((k - 1) / 2);
  return padding;
}

void check_axes(int dimension, const std::vector<std::int64_t>& values, const char* what) {
  if (dimension != 2 && dimension != 3) {
    throw Error("network dimension is " + std::to_string(dimension), "use 2 or 3");
  }
  if (values.size() != static_cast<std::size_t>(dimension)) {
    throw Error(std::string(what) + " has " + std::to_string(values.size()) + " entries for a " +
                    std::to_string(dimension) + "D network",
                "give one entry per spatial axis");
  }
  for (std::int64_t v : values) {
    if (v < 1) throw Error(std::string(what) + " has an entry below 1", "use sizes >= 1");
  }
}

}  // namespace

ConvNormNonlinImpl::ConvNormNonlinImpl(int dimension, std::int64_t input_channels, std::int64_t output_channels,
                                       std::vector<std::int64_t> kernel_size, std::vector<std::int64_t> stride, bool bias,
                                       bool nonlin)
    : dimension_(dimension),
      input_channels_(input_channels),
      output_channels_(output_channels),
      kernel_size_(std::move(kernel_size)),
      stride_(std::move(stride)),
      bias_(bias),
      has_nonlin_(nonlin) {
  check_axes(dimension_, kernel_size_, "kernel size");
  check_axes(dimension_, stride_, "stride");
  reset();
}

void ConvNormNonlinImpl::reset() {
  const auto padding = same_padding(kernel_size_);
  if (dimension_ == 3) {
    conv_ = torch::nn::AnyModule(torch::nn::Conv3d(
        torch::nn::Conv3dOptions(input_channels_, output_channels_, torch::ExpandingArray<3>(kernel_size_))
            .stride(torch::ExpandingArray<3>(stride_))
            .padding(torch::ExpandingArray<3>(padding))
            .bias(bias_)));
    norm_ = torch::nn::AnyModule(torch::nn::InstanceNorm3d(
        torch::nn::InstanceNorm3dOptions(output_channels_).eps(kInstanceNormEps).affine(true)));
  } else {
    conv_ = torch::nn::AnyModule(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(input_channels_, output_channels_, torch::ExpandingArray<2>(kernel_size_))
            .stride(torch::ExpandingArray<2>(stride_))
            .padding(torch::ExpandingArray<2>(padding))
            .bias(bias_)));
    norm_ = torch::nn::AnyModule(torch::nn::InstanceNorm2d(
        torch::nn::InstanceNorm2dOptions(output_channels_).eps(kInstanceNormEps).affine(true)));
  }
  register_module("conv", conv_.ptr());
  register_module("norm", norm_.ptr());
  if (has_nonlin_) {
    nonlin_ = torch::nn::AnyModule(
        torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(kLeakyReluSlope).inplace(true)));
    register_module("nonlin", nonlin_.ptr());
  }
}

torch::Tensor ConvNormNonlinImpl::forward(torch::Tensor x) {
  torch::Tensor y = norm_.forward(conv_.forward(std::move(x)));
  return has_nonlin_ ? nonlin_.forward(std::move(y)) : y;
}

torch::Tensor ConvNormNonlinImpl::fused_forward(const torch::Tensor& x) {
  const auto parameters = conv_.ptr()->named_parameters(/*recurse=*/false);
  const torch::Tensor* bias = parameters.find("bias");
  torch::Tensor y = inference_conv(x, weight_cache_.get(parameters["weight"], x.scalar_type()),
                                   bias_cache_.get(bias != nullptr ? *bias : torch::Tensor(), x.scalar_type()), stride_,
                                   same_padding(kernel_size_), &winograd_cache_, &output_buffer_);
  if (!y.is_contiguous()) y = y.contiguous();
  const double slope = has_nonlin_ ? kLeakyReluSlope : 1.0;  // slope 1: no activation
  if (dimension_ == 3) {
    const auto* norm = norm_.ptr()->as<torch::nn::InstanceNorm3dImpl>();
    instance_norm_leaky_relu_(y, norm->weight, norm->bias, kInstanceNormEps, slope);
  } else {
    const auto* norm = norm_.ptr()->as<torch::nn::InstanceNorm2dImpl>();
    instance_norm_leaky_relu_(y, norm->weight, norm->bias, kInstanceNormEps, slope);
  }
  return y;
}

StackedConvBlocksImpl::StackedConvBlocksImpl(int num_convs, int dimension, std::int64_t input_channels,
                                             std::int64_t output_channels, std::vector<std::int64_t> kernel_size,
                                             std::vector<std::int64_t> first_stride)
    : num_convs_(num_convs),
      dimension_(dimension),
      input_channels_(input_channels),
      output_channels_(output_channels),
      kernel_size_(std::move(kernel_size)),
      first_stride_(std::move(first_stride)) {
  if (num_convs_ < 1) {
    throw Error("a stage has " + std::to_string(num_convs_) + " convolutions", "give at least 1 per stage");
  }
  reset();
}

void StackedConvBlocksImpl::reset() {
  convs_ = torch::nn::Sequential();
  const std::vector<std::int64_t> unit_stride(static_cast<std::size_t>(dimension_), 1);
  for (int i = 0; i < num_convs_; ++i) {
    convs_->push_back(ConvNormNonlin(dimension_, i == 0 ? input_channels_ : output_channels_, output_channels_,
                                     kernel_size_, i == 0 ? first_stride_ : unit_stride));
  }
  register_module("convs", convs_);
}

torch::Tensor StackedConvBlocksImpl::forward(torch::Tensor x) { return convs_->forward(std::move(x)); }

torch::Tensor StackedConvBlocksImpl::fused_forward(torch::Tensor x) {
  for (const auto& block : *convs_) x = block.ptr()->as<ConvNormNonlinImpl>()->fused_forward(x);
  return x;
}

}  // namespace mlseg
