#include "mlseg/nn/segmentation_network.h"

#include "mlseg/core/error.h"

namespace mlseg {

torch::Tensor SegmentationNetworkImpl::fused_forward(const torch::Tensor&) {
  throw Error(class_name() + " has no fused inference forward", "use the module's forward (sliding-window option fused_forward off)");
}

SegmentationNetwork SegmentationNetwork::clone(const std::optional<torch::Device>& device) const {
  if (!impl_) throw Error("an empty network was cloned", "build or load the network first");
  // Module::clone takes c10::optional (std::optional from LibTorch 2.4): a Device converts to both.
  auto copy = std::dynamic_pointer_cast<SegmentationNetworkImpl>(device ? impl_->module().clone(*device) : impl_->module().clone());
  if (!copy) throw Error(impl_->class_name() + " did not clone into a segmentation network", "report this as a bug");
  return SegmentationNetwork(std::move(copy));
}

void check_network_input(const torch::Tensor& x, int dimension, std::int64_t input_channels) {
  if (x.dim() != dimension + 2 || x.size(1) != input_channels) {
    throw Error("network input has shape " + c10::str(x.sizes()) + ", expected [B, " + std::to_string(input_channels) +
                    (dimension == 3 ? ", Z, Y, X]" : ", Y, X]"),
                "pass a batch with the planned number of image channels");
  }
}

torch::Device network_device(const SegmentationNetworkImpl& network) {
  const auto parameters = network.module().parameters();
  return parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
}

}  // namespace mlseg
