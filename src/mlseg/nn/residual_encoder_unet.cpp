#include "mlseg/nn/residual_encoder_unet.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/pooling.h>
#include <torch/torch.h>

#include <string>

#include "mlseg/core/error.h"

namespace mlseg {

ResidualEncoderUNetOptions validated(ResidualEncoderUNetOptions o) {
  const int dim = o.dimension();
  if (dim != 2 && dim != 3) throw Error("network dimension is " + std::to_string(dim), "use 2 (Conv2d) or 3 (Conv3d)");
  if (o.n_stages() < 2) throw Error("n_stages is " + std::to_string(o.n_stages()), "use at least 2 stages");
  if (o.input_channels() < 1 || o.num_classes() < 1) throw Error("input_channels or num_classes below 1", "give positive counts");
  const auto stages = static_cast<std::size_t>(o.n_stages());
  auto expect = [&](std::size_t count, std::size_t expected, const char* what) {
    if (count != expected) {
      throw Error(std::string(what) + " has " + std::to_string(count) + " entries, n_stages is " + std::to_string(stages),
                  "give " + std::to_string(expected) + " entries");
    }
  };
  expect(o.features_per_stage().size(), stages, "features_per_stage");
  expect(o.kernel_sizes().size(), stages, "kernel_sizes");
  expect(o.strides().size(), stages, "strides");
  expect(o.n_blocks_per_stage().size(), stages, "n_blocks_per_stage");
  expect(o.n_conv_per_stage_decoder().size(), stages - 1, "n_conv_per_stage_decoder");
  for (std::size_t s = 0; s < stages; ++s) {
    if (o.features_per_stage()[s] < 1 || o.n_blocks_per_stage()[s] < 1) {
      throw Error("stage " + std::to_string(s) + " has no features or no blocks", "use positive features_per_stage and n_blocks_per_stage");
    }
    if (o.kernel_sizes()[s].size() != static_cast<std::size_t>(dim) || o.strides()[s].size() != static_cast<std::size_t>(dim)) {
      throw Error("stage " + std::to_string(s) + "'s kernel size or stride does not have " + std::to_string(dim) + " axes",
                  "give one value per spatial axis");
    }
  }
  return o;
}

// ---- block ----

BasicBlockDImpl::BasicBlockDImpl(int dimension, std::int64_t input_channels, std::int64_t output_channels,
                                 std::vector<std::int64_t> kernel_size, std::vector<std::int64_t> stride)
    : dimension_(dimension),
      input_channels_(input_channels),
      output_channels_(output_channels),
      kernel_size_(std::move(kernel_size)),
      stride_(std::move(stride)) {
  reset();
}

void BasicBlockDImpl::reset() {
  const std::vector<std::int64_t> unit(static_cast<std::size_t>(dimension_), 1);
  conv1_ = register_module("conv1", ConvNormNonlin(dimension_, input_channels_, output_channels_, kernel_size_, stride_));
  conv2_ = register_module("conv2", ConvNormNonlin(dimension_, output_channels_, output_channels_, kernel_size_, unit,
                                                   /*bias=*/true, /*nonlin=*/false));
  bool strided = false;
  for (std::int64_t s : stride_) strided = strided || s != 1;
  skip_ = torch::nn::Sequential();
  if (strided) {
    if (dimension_ == 3) {
      const torch::ExpandingArray<3> s(stride_);
      skip_->push_back(torch::nn::AvgPool3d(torch::nn::AvgPool3dOptions(s).stride(s)));
    } else {
      const torch::ExpandingArray<2> s(stride_);
      skip_->push_back(torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(s).stride(s)));
    }
  }
  if (input_channels_ != output_channels_) {
    skip_->push_back(ConvNormNonlin(dimension_, input_channels_, output_channels_, unit, unit, /*bias=*/false, /*nonlin=*/false));
  }
  if (!skip_->is_empty()) register_module("skip", skip_);
}

torch::Tensor BasicBlockDImpl::forward(torch::Tensor x) {
  torch::Tensor residual = skip_->is_empty() ? x : skip_->forward(x);
  torch::Tensor out = conv2_->forward(conv1_->forward(x));
  out.add_(residual);
  return torch::leaky_relu_(out, kLeakyReluSlope);
}

torch::Tensor BasicBlockDImpl::fused_forward(const torch::Tensor& x) {
  torch::Tensor residual = x;
  for (auto& part : *skip_) {
    if (auto* conv = part.ptr()->as<ConvNormNonlinImpl>()) {
      residual = conv->fused_forward(residual);
    } else {
      residual = part.forward(residual);  // AvgPool
    }
  }
  torch::Tensor out = conv2_->fused_forward(conv1_->fused_forward(x));
  out.add_(residual);
  return torch::leaky_relu_(out, kLeakyReluSlope);
}

void BasicBlockDImpl::zero_last_norm() {
  torch::NoGradGuard no_grad;
  for (auto& named : conv2_->named_parameters(/*recurse=*/true)) {
    if (named.key().rfind("norm.", 0) == 0) named.value().zero_();
  }
}

// ---- encoder ----

ResidualEncoderImpl::ResidualEncoderImpl(ResidualEncoderUNetOptions options_) : options(validated(std::move(options_))) {
  reset();
}

void ResidualEncoderImpl::reset() {
  const int dim = options.dimension();
  const std::vector<std::int64_t> unit(static_cast<std::size_t>(dim), 1);
  const auto& features = options.features_per_stage();
  stem_ = register_module("stem", StackedConvBlocks(1, dim, options.input_channels(), features[0], options.kernel_sizes()[0], unit));
  stages_ = torch::nn::ModuleList();
  stage_blocks_.clear();
  std::int64_t in = features[0];
  for (std::size_t s = 0; s < features.size(); ++s) {
    torch::nn::Sequential blocks;
    for (int b = 0; b < options.n_blocks_per_stage()[s]; ++b) {
      blocks->push_back(BasicBlockD(dim, b == 0 ? in : features[s], features[s], options.kernel_sizes()[s],
                                    b == 0 ? options.strides()[s] : unit));
    }
    // StackedResidualBlocks: the blocks under "blocks".
    auto stage = std::make_shared<torch::nn::Module>();
    stage->register_module("blocks", blocks);
    stages_->push_back(stage);
    stage_blocks_.push_back(blocks);
    in = features[s];
  }
  register_module("stages", stages_);
}

std::vector<torch::Tensor> ResidualEncoderImpl::forward(torch::Tensor x) {
  x = stem_->forward(std::move(x));
  std::vector<torch::Tensor> skips;
  for (auto& blocks : stage_blocks_) {
    x = blocks->forward(x);
    skips.push_back(x);
  }
  return skips;
}

std::vector<torch::Tensor> ResidualEncoderImpl::fused_forward(torch::Tensor x) {
  x = stem_->fused_forward(x);
  std::vector<torch::Tensor> skips;
  for (auto& blocks : stage_blocks_) {
    for (const auto& block : *blocks) x = block.ptr()->as<BasicBlockDImpl>()->fused_forward(x);
    skips.push_back(x);
  }
  return skips;
}

// ---- network ----

ResidualEncoderUNetImpl::ResidualEncoderUNetImpl(ResidualEncoderUNetOptions options_) : options(validated(std::move(options_))) {
  reset();
}

void ResidualEncoderUNetImpl::reset() {
  encoder = register_module("encoder", ResidualEncoder(options));
  std::vector<int> decoder_convs = options.n_conv_per_stage_decoder();
  decoder = register_module("decoder", UNetDecoder(UNetDecoderOptions(options.num_classes())
                                                       .dimension(options.dimension())
                                                       .features_per_stage(options.features_per_stage())
                                                       .kernel_sizes(options.kernel_sizes())
                                                       .strides(options.strides())
                                                       .n_conv_per_stage_decoder(decoder_convs)
                                                       .deep_supervision(options.deep_supervision())));
  initialize_weights();
}

std::vector<torch::Tensor> ResidualEncoderUNetImpl::forward(torch::Tensor x) {
  check_network_input(x, options.dimension(), options.input_channels());
  return decoder->forward(encoder->forward(std::move(x)));
}

torch::Tensor ResidualEncoderUNetImpl::fused_forward(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  check_network_input(x, options.dimension(), options.input_channels());
  return decoder->fused_forward(encoder->fused_forward(x.to(torch::kFloat).contiguous()));
}

void ResidualEncoderUNetImpl::set_deep_supervision(bool enabled) {
  options.deep_supervision(enabled);
  decoder->options.deep_supervision(enabled);
}

void ResidualEncoderUNetImpl::initialize_weights() {
  initialize_he_weights(*this);
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* block = module->as<BasicBlockDImpl>()) block->zero_last_norm();
  }
}

}  // namespace mlseg
