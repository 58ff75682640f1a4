#include "mlseg/nn/inference_kernels.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

constexpr const char* kKernelFix = "use the module's forward (fused_forward is float32 inference on the CPU)";

bool onednn_usable(const torch::Tensor& x) {
  const bool float_type = x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16;
  return x.device().is_cpu() && float_type && at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
}

std::vector<std::int64_t> spatial_sizes(const torch::Tensor& t) {
  return std::vector<std::int64_t>(t.sizes().begin() + 2, t.sizes().end());
}

}  // namespace

torch::Tensor ReusableBuffer::take(c10::IntArrayRef sizes, const torch::TensorOptions& options) {
  const bool free = buffer_.defined() && buffer_.use_count() == 1 && buffer_.storage().use_count() == 1;
  if (!free || buffer_.sizes() != sizes || buffer_.dtype() != options.dtype() || buffer_.device() != options.device()) {
    buffer_ = torch::empty(sizes, options);
  }
  return buffer_;
}

torch::Tensor CastParameterCache::get(const torch::Tensor& parameter, torch::ScalarType type) {
  if (!parameter.defined() || parameter.scalar_type() == type) return parameter;
  const auto version = static_cast<std::int64_t>(parameter._version());
  if (!cast_.defined() || cast_.scalar_type() != type || source_ != parameter.data_ptr() || version_ != version) {
    cast_ = parameter.detach().to(type).contiguous();
    source_ = parameter.data_ptr();
    version_ = version;
  }
  return cast_;
}

torch::Tensor inference_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             c10::IntArrayRef stride, c10::IntArrayRef padding, WinogradWeightCache* winograd,
                             ReusableBuffer* output) {
  if (winograd != nullptr && winograd_applicable(x, weight, stride, padding)) {
    const std::vector<std::int64_t> shape{x.size(0), weight.size(0), x.size(2), x.size(3), x.size(4)};
    return winograd_conv3d(x, winograd->get(weight), bias, output != nullptr ? output->take(shape, x.options()) : torch::Tensor());
  }
  const std::vector<std::int64_t> dilation(stride.size(), 1);
  const c10::optional<torch::Tensor> b = bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt;
  if (onednn_usable(x)) return at::mkldnn_convolution(x.contiguous(), weight, b, padding, stride, dilation, /*groups=*/1);
  const std::vector<std::int64_t> no_output_padding(stride.size(), 0);
  return at::convolution(x, weight, b, stride, padding, dilation, /*transposed=*/false, no_output_padding, /*groups=*/1);
}

void transposed_conv_into(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          const torch::Tensor& out) {
  const std::int64_t axes = x.dim() - 2;
  if (axes < 1 || axes > 3 || weight.dim() != x.dim() || out.dim() != x.dim() || weight.size(0) != x.size(1) ||
      out.size(0) != x.size(0) || out.size(1) != weight.size(1) || out.scalar_type() != x.scalar_type()) {
    throw Error("the transposed convolution got tensors of unexpected shapes", kKernelFix);
  }
  const std::int64_t batch = x.size(0), in_channels = x.size(1), out_channels = weight.size(1);
  std::int64_t voxels = 1, taps = 1;
  std::vector<std::int64_t> scattered{out_channels}, gathered{out_channels};
  for (std::int64_t a = 0; a < axes; ++a) {
    const std::int64_t s = x.size(2 + a), k = weight.size(2 + a);
    if (out.size(2 + a) != s * k) throw Error("the transposed convolution's output is not input x kernel per axis", kKernelFix);
    voxels *= s;
    taps *= k;
    scattered.push_back(s);
    scattered.push_back(k);
  }
  // rows of the product: [Cout, k0, k1, k2, s0, s1, s2] → [Cout, s0, k0, s1, k1, s2, k2]
  for (std::int64_t a = 0; a < axes; ++a) gathered.push_back(weight.size(2 + a));
  for (std::int64_t a = 0; a < axes; ++a) gathered.push_back(x.size(2 + a));
  std::vector<std::int64_t> order{0};
  for (std::int64_t a = 0; a < axes; ++a) {
    order.push_back(1 + axes + a);
    order.push_back(1 + a);
  }
  // [Cout·taps, Cin]: row (o, tap) holds weight[:, o, tap]; the bias repeats per tap.
  const torch::Tensor w = weight.to(x.scalar_type()).reshape({in_channels, out_channels * taps}).t().contiguous();
  const torch::Tensor b = bias.defined() ? bias.to(x.scalar_type()).repeat_interleave(taps).unsqueeze(1)
                                         : torch::zeros({out_channels * taps, 1}, x.options());
  const torch::Tensor input = x.contiguous();
  for (std::int64_t i = 0; i < batch; ++i) {
    const torch::Tensor rows = at::addmm(b, w, input[i].reshape({in_channels, voxels}));
    out[i].view(scattered).copy_(rows.view(gathered).permute(order));
  }
}

torch::Tensor pointwise_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const std::int64_t batch = x.size(0), in_channels = x.size(1), out_channels = weight.size(0);
  if (weight.numel() != out_channels * in_channels) throw Error("the 1x1 convolution's weight is not [Cout, Cin, 1...]", kKernelFix);
  std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape[1] = out_channels;
  torch::Tensor out = torch::empty(shape, x.options());
  const std::int64_t voxels = x[0][0].numel();
  const torch::Tensor w = weight.to(x.scalar_type()).reshape({out_channels, in_channels});
  const torch::Tensor b = bias.defined() ? bias.to(x.scalar_type()).unsqueeze(1) : torch::zeros({out_channels, 1}, x.options());
  const torch::Tensor input = x.contiguous();
  for (std::int64_t i = 0; i < batch; ++i) {
    torch::Tensor o = out[i].view({out_channels, voxels});
    at::addmm_out(o, b, w, input[i].reshape({in_channels, voxels}));
  }
  return out;
}

}  // namespace mlseg
