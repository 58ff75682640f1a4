#include "mlseg/nn/unet_decoder.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>

#include <algorithm>
#include <string>

#include "mlseg/core/error.h"
#include "mlseg/nn/inference_kernels.h"

namespace mlseg {
namespace {

constexpr double kHeInitNegativeSlope = 1e-2;

torch::nn::AnyModule transposed_conv(int dimension, std::int64_t in, std::int64_t out, const std::vector<std::int64_t>& stride) {
  if (dimension == 3) {
    const torch::ExpandingArray<3> s(stride);
    return torch::nn::AnyModule(torch::nn::ConvTranspose3d(torch::nn::ConvTranspose3dOptions(in, out, s).stride(s).bias(true)));
  }
  const torch::ExpandingArray<2> s(stride);
  return torch::nn::AnyModule(torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(in, out, s).stride(s).bias(true)));
}

torch::nn::AnyModule pointwise_conv(int dimension, std::int64_t in, std::int64_t out) {
  if (dimension == 3) return torch::nn::AnyModule(torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, 1).bias(true)));
  return torch::nn::AnyModule(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).bias(true)));
}

UNetDecoderOptions validated(UNetDecoderOptions o) {
  const std::size_t stages = o.features_per_stage().size();
  if (o.dimension() != 2 && o.dimension() != 3) throw Error("decoder dimension is " + std::to_string(o.dimension()), "use 2 or 3");
  if (stages < 2) throw Error("the decoder needs at least 2 encoder stages", "plan at least two stages");
  if (o.num_classes() < 1) throw Error("num_classes is below 1", "give the number of network outputs");
  if (o.kernel_sizes().size() != stages || o.strides().size() != stages || o.n_conv_per_stage_decoder().size() != stages - 1) {
    throw Error("the decoder's lists disagree: " + std::to_string(stages) + " stages, " + std::to_string(o.kernel_sizes().size()) +
                    " kernel sizes, " + std::to_string(o.strides().size()) + " strides, " +
                    std::to_string(o.n_conv_per_stage_decoder().size()) + " decoder conv counts",
                "give one kernel size and stride per stage and n_stages - 1 decoder conv counts");
  }
  return o;
}

}  // namespace

UNetDecoderImpl::UNetDecoderImpl(UNetDecoderOptions options_) : options(validated(std::move(options_))) { reset(); }

void UNetDecoderImpl::reset() {
  stages_ = torch::nn::ModuleList();
  transpconvs_ = torch::nn::ModuleList();
  seg_layers_ = torch::nn::ModuleList();
  transpconv_calls_.clear();
  seg_layer_calls_.clear();
  const auto& features = options.features_per_stage();
  const std::size_t n = features.size();
  const std::vector<std::int64_t> unit_stride(static_cast<std::size_t>(options.dimension()), 1);
  // Decoder stage d (0 = bottom) upsamples encoder stage s = n - 1 - d into stage s - 1.
  for (std::size_t d = 0; d + 1 < n; ++d) {
    const std::size_t s = n - 1 - d;
    const std::int64_t below = features[s], skip = features[s - 1];
    transpconv_calls_.push_back(transposed_conv(options.dimension(), below, skip, options.strides()[s]));
    transpconvs_->push_back(transpconv_calls_.back().ptr());
    stages_->push_back(StackedConvBlocks(options.n_conv_per_stage_decoder()[d], options.dimension(), 2 * skip, skip,
                                         options.kernel_sizes()[s - 1], unit_stride));
    // Every stage has a head, used or not, so the parameter set does not depend on deep supervision.
    seg_layer_calls_.push_back(pointwise_conv(options.dimension(), skip, options.num_classes()));
    seg_layers_->push_back(seg_layer_calls_.back().ptr());
  }
  register_module("stages", stages_);
  register_module("transpconvs", transpconvs_);
  register_module("seg_layers", seg_layers_);
}

std::vector<torch::Tensor> UNetDecoderImpl::forward(const std::vector<torch::Tensor>& skips) {
  std::vector<torch::Tensor> outputs;
  const std::size_t last = stages_->size() - 1;
  decode(skips, [&](StackedConvBlocksImpl& stage, torch::Tensor x) { return stage.forward(std::move(x)); },
         [&](std::size_t d, const torch::Tensor& x) {
           if (options.deep_supervision() || d == last) outputs.push_back(seg_layer_calls_[d].forward(x));
         });
  // Collected bottom-up; nnU-Net's order is full resolution first.
  std::reverse(outputs.begin(), outputs.end());
  return outputs;
}

torch::Tensor UNetDecoderImpl::fused_forward(const std::vector<torch::Tensor>& skips) {
  check_skip_count(skips);
  auto parameter = [](const torch::nn::AnyModule& module, const char* name) {
    const auto parameters = module.ptr()->named_parameters(/*recurse=*/false);
    const torch::Tensor* found = parameters.find(name);
    return found != nullptr ? *found : torch::Tensor();
  };
  torch::Tensor x = skips.back();
  for (std::size_t d = 0; d < stages_->size(); ++d) {
    const torch::Tensor& skip = skips[skips.size() - 2 - d];
    const torch::Tensor weight = parameter(transpconv_calls_[d], "weight");
    const std::int64_t upsampled = weight.size(1);
    std::vector<std::int64_t> shape(skip.sizes().begin(), skip.sizes().end());
    shape[1] = upsampled + skip.size(1);
    // The concatenation [upsampled, skip], the upsampled half written in place.
    if (joined_buffers_.size() != stages_->size()) joined_buffers_.resize(stages_->size());
    torch::Tensor joined = joined_buffers_[d].take(shape, skip.options());
    transposed_conv_into(x, weight, parameter(transpconv_calls_[d], "bias"), joined.narrow(1, 0, upsampled));
    joined.narrow(1, upsampled, skip.size(1)).copy_(skip);
    x = stages_[d]->as<StackedConvBlocksImpl>()->fused_forward(std::move(joined));
  }
  return pointwise_conv(x, parameter(seg_layer_calls_.back(), "weight"), parameter(seg_layer_calls_.back(), "bias"));
}

void UNetDecoderImpl::check_skip_count(const std::vector<torch::Tensor>& skips) const {
  if (skips.size() != stages_->size() + 1) {
    throw Error("the decoder got " + std::to_string(skips.size()) + " skips for " + std::to_string(stages_->size() + 1) +
                    " encoder stages",
                "pass the encoder's outputs unchanged");
  }
}

template <typename StageCall, typename AfterStage>
void UNetDecoderImpl::decode(const std::vector<torch::Tensor>& skips, StageCall&& stage_call, AfterStage&& after_stage) {
  check_skip_count(skips);
  torch::Tensor x = skips.back();
  for (std::size_t d = 0; d < stages_->size(); ++d) {
    x = transpconv_calls_[d].forward(x);
    x = torch::cat({x, skips[skips.size() - 2 - d]}, 1);
    x = stage_call(*stages_[d]->as<StackedConvBlocksImpl>(), std::move(x));
    after_stage(d, x);
  }
}

void initialize_he_weights(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (const auto& child : module.modules(/*include_self=*/false)) {
    const bool is_conv = child->as<torch::nn::Conv2d>() || child->as<torch::nn::Conv3d>() ||
                         child->as<torch::nn::ConvTranspose2d>() || child->as<torch::nn::ConvTranspose3d>();
    if (!is_conv) continue;
    for (auto& named : child->named_parameters(/*recurse=*/false)) {
      if (named.key() == "weight") {
        torch::nn::init::kaiming_normal_(named.value(), kHeInitNegativeSlope);
      } else if (named.key() == "bias") {
        torch::nn::init::zeros_(named.value());
      }
    }
  }
}

}  // namespace mlseg
