#include "mlseg/inference/fused_unet_forward.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "mlseg/core/error.h"
#include "mlseg/nn/conv_blocks.h"

namespace mlseg {
namespace {

// Sum and sum of squares of n floats: float lanes over short blocks (vectorisable), double across blocks.
void sum_and_squares(const float* data, std::int64_t n, double& sum, double& squares) {
  constexpr std::int64_t kLanes = 8, kBlock = 2048;
  sum = 0.0;
  squares = 0.0;
  for (std::int64_t start = 0; start < n; start += kBlock) {
    const std::int64_t end = std::min(n, start + kBlock);
    float s[kLanes] = {}, q[kLanes] = {};
    std::int64_t i = start;
    for (; i + kLanes <= end; i += kLanes) {
      for (std::int64_t l = 0; l < kLanes; ++l) {
        const float v = data[i + l];
        s[l] += v;
        q[l] += v * v;
      }
    }
    for (; i < end; ++i) {
      s[0] += data[i];
      q[0] += data[i] * data[i];
    }
    for (std::int64_t l = 0; l < kLanes; ++l) {
      sum += s[l];
      squares += q[l];
    }
  }
}

struct Layer {
  torch::Tensor weight, bias;
};

const torch::Tensor& parameter(const torch::OrderedDict<std::string, torch::Tensor>& parameters, const std::string& name) {
  const torch::Tensor* found = parameters.find(name);
  if (found == nullptr) throw Error("the network has no parameter " + name, "the fused forward supports PlainConvUNet only");
  return *found;
}

std::vector<std::int64_t> padding_of(const torch::Tensor& weight) {
  std::vector<std::int64_t> padding;
  for (std::int64_t d = 2; d < weight.dim(); ++d) padding.push_back((weight.size(d) - 1) / 2);
  return padding;
}

torch::Tensor convolution(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          const std::vector<std::int64_t>& stride, int dimension) {
  return dimension == 3 ? torch::conv3d(x, weight, bias, stride, padding_of(weight)) : torch::conv2d(x, weight, bias, stride, padding_of(weight));
}

torch::Tensor conv_stack(torch::Tensor x, const torch::OrderedDict<std::string, torch::Tensor>& p, const std::string& prefix,
                         int num_convs, const std::vector<std::int64_t>& first_stride, int dimension) {
  const std::vector<std::int64_t> unit(static_cast<std::size_t>(dimension), 1);
  for (int i = 0; i < num_convs; ++i) {
    const std::string at = prefix + "convs." + std::to_string(i) + ".";
    x = convolution(x, parameter(p, at + "conv.weight"), parameter(p, at + "conv.bias"), i == 0 ? first_stride : unit, dimension);
    if (!x.is_contiguous()) x = x.contiguous();
    instance_norm_leaky_relu_(x, parameter(p, at + "norm.weight"), parameter(p, at + "norm.bias"), kInstanceNormEps, kLeakyReluSlope);
  }
  return x;
}

}  // namespace

void instance_norm_leaky_relu_(torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps, double slope) {
  if (x.scalar_type() != torch::kFloat || !x.is_contiguous() || !x.device().is_cpu() || x.dim() < 3) {
    throw Error("the fused instance norm takes a contiguous float32 CPU tensor [B, C, ...]", "use the module's forward");
  }
  const std::int64_t batch = x.size(0), channels = x.size(1), n = x.numel() / std::max<std::int64_t>(1, batch * channels);
  const torch::Tensor w = weight.to(torch::kFloat).contiguous(), b = bias.to(torch::kFloat).contiguous();
  float* data = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  const float negative = static_cast<float>(slope);
  at::parallel_for(0, batch * channels, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      float* v = data + row * n;
      double sum = 0, squares = 0;
      sum_and_squares(v, n, sum, squares);
      const double mean = sum / static_cast<double>(n);
      const double variance = std::max(0.0, squares / static_cast<double>(n) - mean * mean);
      const std::int64_t c = row % channels;
      const double scale = wp[c] / std::sqrt(variance + eps);
      const float a = static_cast<float>(scale), shift = static_cast<float>(bp[c] - mean * scale);
      for (std::int64_t i = 0; i < n; ++i) {
        const float y = v[i] * a + shift;
        v[i] = y > 0.0f ? y : y * negative;
      }
    }
  });
}

TileForward fused_network_tile_forward(const PlainConvUNet& network) {
  PlainConvUNet net = network;
  return [net](const torch::Tensor& tiles) {
    torch::NoGradGuard no_grad;
    const PlainConvUNetOptions& o = net->options;
    const int dimension = o.dimension();
    const auto p = net->named_parameters();
    torch::Tensor x = dimension == 2 ? tiles.squeeze(2) : tiles;
    x = x.to(torch::kFloat).contiguous();
    std::vector<torch::Tensor> skips;
    for (int s = 0; s < o.n_stages(); ++s) {
      x = conv_stack(x, p, "encoder.stages." + std::to_string(s) + ".0.", o.n_conv_per_stage().empty() ? 2 : o.n_conv_per_stage()[s], o.strides()[s], dimension);
      skips.push_back(x);
    }
    const int decoder_stages = o.n_stages() - 1;
    if (decoder_stages < 1) throw Error("a PlainConvUNet with one stage has no segmentation head", "plan at least two stages");
    for (int d = 0; d < decoder_stages; ++d) {
      const std::string at = "decoder.transpconvs." + std::to_string(d) + ".";
      const auto& stride = o.strides()[static_cast<std::size_t>(o.n_stages() - 1 - d)];
      x = dimension == 3 ? torch::conv_transpose3d(x, parameter(p, at + "weight"), parameter(p, at + "bias"), stride)
                         : torch::conv_transpose2d(x, parameter(p, at + "weight"), parameter(p, at + "bias"), stride);
      x = torch::cat({x, skips[skips.size() - 2 - static_cast<std::size_t>(d)]}, 1);
      const std::vector<std::int64_t> unit(static_cast<std::size_t>(dimension), 1);
      x = conv_stack(x, p, "decoder.stages." + std::to_string(d) + ".", o.n_conv_per_stage_decoder().empty() ? 2 : o.n_conv_per_stage_decoder()[d], unit, dimension);
    }
    if (decoder_stages > 0) {
      const std::string at = "decoder.seg_layers." + std::to_string(decoder_stages - 1) + ".";
      x = convolution(x, parameter(p, at + "weight"), parameter(p, at + "bias"), std::vector<std::int64_t>(dimension, 1), dimension);
    }
    return dimension == 2 ? x.unsqueeze(2) : x;
  };
}

}  // namespace mlseg
