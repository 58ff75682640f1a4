#include "mlseg/nn/plain_conv_unet.h"

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/container/sequential.h>

#include <algorithm>
#include <string>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

constexpr int kDefaultConvsPerStage = 2;

std::string stage_name(std::size_t s) { return "stage " + std::to_string(s); }

std::vector<std::int64_t> stride_of(const PlainConvUNetOptions& o, std::size_t s) { return o.strides()[s]; }

}  // namespace

PlainConvUNetOptions validated(PlainConvUNetOptions o) {
  const int dim = o.dimension();
  if (dim != 2 && dim != 3) {
    throw Error("network dimension is " + std::to_string(dim), "use 2 (Conv2d) or 3 (Conv3d)");
  }
  if (o.n_stages() < 1) throw Error("n_stages is " + std::to_string(o.n_stages()), "use at least 1 stage");
  const auto stages = static_cast<std::size_t>(o.n_stages());
  if (o.input_channels() < 1) throw Error("input_channels is below 1", "give the number of image channels");
  if (o.num_classes() < 1) throw Error("num_classes is below 1", "give the number of network outputs");
  if (o.n_conv_per_stage().empty()) o.n_conv_per_stage(std::vector<int>(stages, kDefaultConvsPerStage));
  if (o.n_conv_per_stage_decoder().empty()) {
    o.n_conv_per_stage_decoder(std::vector<int>(stages - 1, kDefaultConvsPerStage));
  }
  auto expect_count = [&](std::size_t count, std::size_t expected, const char* what) {
    if (count != expected) {
      throw Error(std::string(what) + " has " + std::to_string(count) + " entries, n_stages is " +
                      std::to_string(stages),
                  "give " + std::to_string(expected) + " entries");
    }
  };
  expect_count(o.features_per_stage().size(), stages, "features_per_stage");
  expect_count(o.kernel_sizes().size(), stages, "kernel_sizes");
  expect_count(o.strides().size(), stages, "strides");
  expect_count(o.n_conv_per_stage().size(), stages, "n_conv_per_stage");
  expect_count(o.n_conv_per_stage_decoder().size(), stages - 1, "n_conv_per_stage_decoder");
  for (std::size_t s = 0; s < stages; ++s) {
    if (o.features_per_stage()[s] < 1) throw Error("features_per_stage has an entry below 1 at " + stage_name(s), "use positive feature counts");
    if (o.n_conv_per_stage()[s] < 1) throw Error("n_conv_per_stage is below 1 at " + stage_name(s), "use at least 1 conv per stage");
    if (s + 1 < stages && o.n_conv_per_stage_decoder()[s] < 1) {
      throw Error("n_conv_per_stage_decoder is below 1 at decoder " + stage_name(s), "use at least 1 conv per stage");
    }
    for (const auto* list : {&o.kernel_sizes()[s], &o.strides()[s]}) {
      const char* what = list == &o.kernel_sizes()[s] ? "kernel_sizes" : "strides";
      if (list->size() != static_cast<std::size_t>(dim)) {
        throw Error(std::string(what) + " at " + stage_name(s) + " has " + std::to_string(list->size()) +
                        " axes for a " + std::to_string(dim) + "D network",
                    "give " + std::to_string(dim) + " values per stage");
      }
      for (std::int64_t v : *list) {
        if (v < 1) throw Error(std::string(what) + " at " + stage_name(s) + " has a value below 1", "use values >= 1");
      }
    }
    for (std::int64_t k : o.kernel_sizes()[s]) {
      if (k % 2 == 0) throw Error("kernel_sizes at " + stage_name(s) + " has an even size " + std::to_string(k), "use odd kernel sizes (1 or 3)");
    }
  }
  return o;
}

std::int64_t count_parameters(const torch::nn::Module& module) {
  std::int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

// ---- encoder ----

PlainConvEncoderImpl::PlainConvEncoderImpl(PlainConvUNetOptions options_) : options(validated(std::move(options_))) {
  reset();
}

void PlainConvEncoderImpl::reset() {
  stages_ = torch::nn::ModuleList();
  stage_convs_.clear();
  std::int64_t in = options.input_channels();
  for (int s = 0; s < options.n_stages(); ++s) {
    const auto i = static_cast<std::size_t>(s);
    // Each stage is a Sequential around the conv stack, as in Python ("stages.<s>.0.convs...").
    stage_convs_.emplace_back(options.n_conv_per_stage()[i], options.dimension(), in, options.features_per_stage()[i],
                              options.kernel_sizes()[i], stride_of(options, i));
    stages_->push_back(torch::nn::Sequential(stage_convs_.back()));
    in = options.features_per_stage()[i];
  }
  register_module("stages", stages_);
}

std::vector<torch::Tensor> PlainConvEncoderImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> skips;
  skips.reserve(stages_->size());
  for (auto& convs : stage_convs_) {
    x = convs->forward(x);
    skips.push_back(x);
  }
  return skips;
}

std::vector<torch::Tensor> PlainConvEncoderImpl::fused_forward(torch::Tensor x) {
  std::vector<torch::Tensor> skips;
  skips.reserve(stage_convs_.size());
  for (auto& convs : stage_convs_) {
    x = convs->fused_forward(x);
    skips.push_back(x);
  }
  return skips;
}

UNetDecoderOptions decoder_options(const PlainConvUNetOptions& options) {
  const PlainConvUNetOptions o = validated(options);
  return UNetDecoderOptions(o.num_classes())
      .dimension(o.dimension())
      .features_per_stage(o.features_per_stage())
      .kernel_sizes(o.kernel_sizes())
      .strides(o.strides())
      .n_conv_per_stage_decoder(o.n_conv_per_stage_decoder())
      .deep_supervision(o.deep_supervision());
}

// ---- network ----

PlainConvUNetImpl::PlainConvUNetImpl(PlainConvUNetOptions options_) : options(validated(std::move(options_))) {
  if (options.n_stages() < 2) throw Error("PlainConvUNet has n_stages = 1", "use at least 2 stages (one decoder stage)");
  reset();
}

void PlainConvUNetImpl::reset() {
  encoder = register_module("encoder", PlainConvEncoder(options));
  decoder = register_module("decoder", UNetDecoder(decoder_options(options)));
  initialize_weights();
}

std::vector<torch::Tensor> PlainConvUNetImpl::forward(torch::Tensor x) {
  check_network_input(x, options.dimension(), options.input_channels());
  return decoder->forward(encoder->forward(std::move(x)));
}

void PlainConvUNetImpl::set_deep_supervision(bool enabled) {
  options.deep_supervision(enabled);
  decoder->options.deep_supervision(enabled);
}

void PlainConvUNetImpl::initialize_weights() { initialize_he_weights(*this); }

torch::Tensor PlainConvUNetImpl::fused_forward(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  check_network_input(x, options.dimension(), options.input_channels());
  const torch::ScalarType type = x.scalar_type() == torch::kBFloat16 ? torch::kBFloat16 : torch::kFloat;
  return decoder->fused_forward(encoder->fused_forward(x.to(type).contiguous())).to(torch::kFloat);
}

}  // namespace mlseg
