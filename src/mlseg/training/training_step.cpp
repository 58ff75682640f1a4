#include "mlseg/training/training_step.h"


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

}  // namespace mlseg
