#include "mlseg/training/loss_deep_supervision.h"

#include <string>

#include "mlseg/core/error.h"
#include "mlseg/training/losses.h"

namespace mlseg {

std::vector<double> deep_supervision_weights(std::size_t num_outputs) {
  if (num_outputs == 0) throw Error("deep supervision got no outputs", "pass the network's outputs");
  if (num_outputs == 1) return {1.0};
  std::vector<double> weights;
  double weight = 1.0;
  for (std::size_t i = 0; i < num_outputs; ++i, weight /= 2) weights.push_back(weight);
  // nnU-Net: the lowest-resolution output is too coarse to learn from.
  weights.back() = 0.0;
  double total = 0.0;
  for (double w : weights) total += w;
  for (double& w : weights) w /= total;
  return weights;
}

torch::Tensor deep_supervision_loss(const std::vector<torch::Tensor>& outputs, const std::vector<torch::Tensor>& targets,
                                    const std::vector<torch::Tensor>& annotated, const LossOptions& options) {
  if (targets.size() != outputs.size() || (!annotated.empty() && annotated.size() != outputs.size())) {
    throw Error("deep supervision got " + std::to_string(outputs.size()) + " outputs, " +
                    std::to_string(targets.size()) + " targets and " + std::to_string(annotated.size()) + " masks",
                "give one target (and one mask, if any) per network output, full resolution first");
  }
  const std::vector<double> weights = deep_supervision_weights(outputs.size());
  torch::Tensor total;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (weights[i] == 0.0) continue;
    const torch::Tensor mask = annotated.empty() ? torch::Tensor() : annotated[i];
    try {
      const torch::Tensor term = weights[i] * segmentation_loss(outputs[i], targets[i], mask, options);
      total = total.defined() ? total + term : term;
    } catch (const Error& e) {
      throw Error("deep supervision output " + std::to_string(i) + ": " + e.problem(), e.fix());
    }
  }
  return total;
}

}  // namespace mlseg
