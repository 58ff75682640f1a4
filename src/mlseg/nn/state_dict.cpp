#include "mlseg/nn/state_dict.h"

#include <torch/torch.h>

#include <map>
#include <sstream>

#include "mlseg/core/error.h"

namespace mlseg {

namespace {

/// How many names an error lists before "and N more".
constexpr std::size_t kNamesListed = 4;

std::string listed(const std::vector<std::string>& names) {
  std::ostringstream out;
  for (std::size_t i = 0; i < names.size() && i < kNamesListed; ++i) out << (i ? ", " : "") << names[i];
  if (names.size() > kNamesListed) out << " and " << names.size() - kNamesListed << " more";
  return out.str();
}

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace

void load_named_tensors(torch::nn::Module& module, const NamedTensors& weights, const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) targets.emplace(item.key(), item.value());
  // LibTorch registers InstanceNorm's running statistics as undefined buffers when it does not
  // track them; PyTorch's state dict has no such entries.
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    if (item.value().defined()) targets.emplace(item.key(), item.value());
  }

  std::map<std::string, const torch::Tensor*> given;
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : weights) {
    if (targets.count(name) == 0) {
      unexpected.push_back(name);
    } else {
      given.emplace(name, &tensor);
    }
  }
  std::vector<std::string> missing;
  for (const auto& [name, tensor] : targets) {
    if (given.count(name) == 0) missing.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty()) {
    std::string problem = "the checkpoint's weights do not match the network built from the plans:";
    if (!missing.empty()) problem += " " + std::to_string(missing.size()) + " missing (" + listed(missing) + ")";
    if (!missing.empty() && !unexpected.empty()) problem += ";";
    if (!unexpected.empty()) problem += " " + std::to_string(unexpected.size()) + " unexpected (" + listed(unexpected) + ")";
    throw Error(problem,
                "use the plans.json the checkpoint was trained with (same configuration and network_class_name); "
                "a trainer variant with its own network is not supported",
                {source, "", ""});
  }
  for (const auto& [name, tensor] : given) {
    const torch::Tensor& target = targets.at(name);
    if (target.sizes() != tensor->sizes()) {
      throw Error(name + " has shape " + shape_of(*tensor) + " in the checkpoint, " + shape_of(target) + " in the network",
                  "use the plans.json the checkpoint was trained with (features, kernels, strides, channels)", {source, "", ""});
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : given) {
    torch::Tensor target = targets.at(name);
    target.copy_(tensor->to(target.device(), target.scalar_type()));
  }
}

}  // namespace mlseg
