#pragma once
// The network seam: what every segmentation network offers the stages (training, validation,
// prediction, checkpoints), whatever its architecture. Each architecture's module (PlainConvUNetImpl,
// ResidualEncoderUNetImpl) implements SegmentationNetworkImpl next to torch::nn::Module;
// SegmentationNetwork is the shared handle the stages pass around (like a TORCH_MODULE holder).
// Networks are built by network_factory.h from plans.json's network_class_name.
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlseg {

/// dynamic_network_architectures' class names, as plans.json's network_class_name gives them.
inline constexpr const char* kPlainConvUNetClass = "dynamic_network_architectures.architectures.unet.PlainConvUNet";
inline constexpr const char* kResidualEncoderUNetClass =
    "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet";

class SegmentationNetworkImpl {
 public:
  virtual ~SegmentationNetworkImpl() = default;

  /// The module (parameters, buffers, train/eval, to(device), save/load by parameter name).
  virtual torch::nn::Module& module() = 0;
  const torch::nn::Module& module() const { return const_cast<SegmentationNetworkImpl*>(this)->module(); }

  /// x: [B, input_channels, (Z,) Y, X]. Logits per decoder stage, full resolution first (deep
  /// supervision), or the full-resolution logits alone.
  virtual std::vector<torch::Tensor> forward(torch::Tensor x) = 0;
  /// nnU-Net switches deep supervision off for inference and on for training.
  virtual void set_deep_supervision(bool enabled) = 0;
  virtual bool deep_supervision() const = 0;
  /// nnU-Net's initialisation of this architecture (He, plus its own rules).
  virtual void initialize_weights() = 0;

  /// 2 or 3.
  virtual int dimension() const = 0;
  virtual std::int64_t input_channels() const = 0;
  /// Outputs of every segmentation head.
  virtual std::int64_t num_classes() const = 0;
  /// The encoder's stride per stage and axis (tensor axis order): the deep-supervision scales.
  virtual std::vector<std::vector<std::int64_t>> strides() const = 0;
  /// dynamic_network_architectures' full class name (kPlainConvUNetClass, ...).
  virtual std::string class_name() const = 0;

  /// Optional capability: a CPU inference forward (no autograd) that fuses each InstanceNorm with
  /// its LeakyReLU (fused_norm.h), defined by the network's own modules. Returns the
  /// full-resolution logits of x as float32; for float32 x the same result as forward up to float
  /// rounding; a bfloat16 x (PlainConvUNet) computes in bfloat16 (bf16 inference).
  /// Networks without it return false and throw from fused_forward.
  virtual bool has_fused_forward() const { return false; }
  virtual torch::Tensor fused_forward(const torch::Tensor& x);
};

/// The accessors a U-Net answers from its options struct (`Derived::options`: dimension(),
/// input_channels(), num_classes(), strides(), deep_supervision()), for a module
/// `class XImpl : public torch::nn::Cloneable<XImpl>, public UNetNetworkImpl<XImpl>`.
template <typename Derived>
class UNetNetworkImpl : public SegmentationNetworkImpl {
 public:
  torch::nn::Module& module() override { return static_cast<Derived&>(*this); }
  bool deep_supervision() const override { return self().options.deep_supervision(); }
  int dimension() const override { return self().options.dimension(); }
  std::int64_t input_channels() const override { return self().options.input_channels(); }
  std::int64_t num_classes() const override { return self().options.num_classes(); }
  std::vector<std::vector<std::int64_t>> strides() const override { return self().options.strides(); }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

/// A shared handle to a network (copies share the parameters), built from any TORCH_MODULE
/// holder of a SegmentationNetworkImpl: `SegmentationNetwork net = PlainConvUNet(options);`.
class SegmentationNetwork {
 public:
  SegmentationNetwork() = default;
  /*implicit*/ SegmentationNetwork(std::nullptr_t) {}
  explicit SegmentationNetwork(std::shared_ptr<SegmentationNetworkImpl> impl) : impl_(std::move(impl)) {}
  template <typename Holder, typename = decltype(std::declval<Holder>().ptr())>
  /*implicit*/ SegmentationNetwork(const Holder& holder) : impl_(holder.ptr()) {}

  SegmentationNetworkImpl* operator->() const { return impl_.get(); }
  SegmentationNetworkImpl& operator*() const { return *impl_; }
  explicit operator bool() const { return impl_ != nullptr; }
  const std::shared_ptr<SegmentationNetworkImpl>& ptr() const { return impl_; }

  /// A deep copy (own parameters), on `device` when given.
  SegmentationNetwork clone(const std::optional<torch::Device>& device = std::nullopt) const;

  /// The concrete module (PlainConvUNetImpl, ...) or null.
  template <typename Impl>
  Impl* as() const {
    return dynamic_cast<Impl*>(impl_.get());
  }

 private:
  std::shared_ptr<SegmentationNetworkImpl> impl_;
};

/// Throws mlseg::Error unless x is [B, input_channels, (Z,) Y, X] for a `dimension`-D network.
void check_network_input(const torch::Tensor& x, int dimension, std::int64_t input_channels);

/// The device of the network's first parameter (CPU without parameters).
torch::Device network_device(const SegmentationNetworkImpl& network);

}  // namespace mlseg
