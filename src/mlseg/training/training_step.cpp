#include "mlseg/training/training_step.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/data/deep_supervision.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

torch::Tensor network_input(const torch::Tensor& batch_image, int dimension) {
  if (dimension == 3) return batch_image;
  if (batch_image.size(2) != 1) {
    throw Error("a 2D network got patches " + std::to_string(batch_image.size(2)) + " slices deep",
                "2D configurations cut patches of one slice (patch_size {1, y, x})");
  }
  return batch_image.squeeze(2);
}

torch::Tensor network_output_5d(const torch::Tensor& output, int dimension) {
  return dimension == 3 ? output : output.unsqueeze(2);
}

std::vector<ScaleTargets> batch_targets(const torch::Tensor& codes, const LabelEncoding& encoding,
                                        const std::vector<std::array<double, 3>>& scales_zyx, int dimension,
                                        const torch::Device& device) {
  const std::int64_t batch = codes.size(0);
  std::vector<std::vector<torch::Tensor>> targets(scales_zyx.size()), annotated(scales_zyx.size());
  std::vector<bool> any_ignored(scales_zyx.size(), false);
  for (std::int64_t b = 0; b < batch; ++b) {
    const CodeVolume sample{codes[b], encoding.num_channels()};
    const std::vector<CodeVolume> per_scale = deep_supervision_targets(sample, scales_zyx);
    for (std::size_t s = 0; s < per_scale.size(); ++s) {
      TrainingTarget t = encoding.training_target(per_scale[s]);
      targets[s].push_back(t.target);
      annotated[s].push_back(t.annotated);
      any_ignored[s] = any_ignored[s] || t.has_ignored_voxels;
    }
  }
  std::vector<ScaleTargets> out;
  for (std::size_t s = 0; s < scales_zyx.size(); ++s) {
    ScaleTargets scale;
    scale.target = network_input(torch::stack(targets[s]), dimension).to(device, /*non_blocking=*/true);
    if (any_ignored[s]) scale.annotated = network_input(torch::stack(annotated[s]), dimension).to(device, true);
    out.push_back(std::move(scale));
  }
  return out;
}

std::vector<std::array<double, 3>> network_deep_supervision_scales(const std::vector<std::vector<std::int64_t>>& strides,
                                                                   int dimension) {
  std::vector<std::array<std::int64_t, 3>> zyx;
  for (const auto& stage : strides) {
    if (dimension == 2) {
      zyx.push_back({1, stage.at(0), stage.at(1)});
    } else {
      zyx.push_back({stage.at(0), stage.at(1), stage.at(2)});
    }
  }
  return deep_supervision_scales(zyx);
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw Error("unknown --precision '" + name + "'", "use fp32 (default) or bf16");
}

std::string to_string(Precision precision) { return precision == Precision::fp32 ? "fp32" : "bf16"; }

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) {
  if (precision != Precision::bf16) return;
  active_ = true;
  cuda_ = device.is_cuda();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  previous_enabled_ = at::autocast::is_autocast_enabled(type);
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, true);
#else
  if (cuda_) {
    previous_enabled_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    previous_enabled_ = at::autocast::is_cpu_enabled();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
#endif
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(cuda_ ? at::kCUDA : at::kCPU, previous_enabled_);
#else
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
  } else {
    at::autocast::set_cpu_enabled(previous_enabled_);
  }
#endif
  if (!previous_enabled_) at::autocast::clear_cache();
}

}  // namespace mlseg
