#include "mlseg/training/losses.h"

#include <algorithm>
#include <string>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

// Keeps 0/0 (nothing annotated) at 0 instead of NaN, as nnU-Net's clip(mask.sum(), 1e-8).
constexpr double kMinDenominator = 1e-8;

std::string shape(const torch::Tensor& t) { return c10::str(t.sizes()); }

void check_logits(const torch::Tensor& logits) {
  if (!logits.defined() || logits.dim() < 3 || !logits.is_floating_point()) {
    throw Error("loss input is not floating-point logits [B, K, (Z,) Y, X]", "pass the network's output unchanged");
  }
  if (logits.numel() == 0) {
    throw Error("loss input " + shape(logits) + " has no voxels", "pass at least one sample with one voxel");
  }
}

// `annotated` as a [B, 1, ...] mask in the logits' dtype; undefined stays undefined.
torch::Tensor annotation_mask(const torch::Tensor& annotated, const torch::Tensor& logits) {
  if (!annotated.defined()) return annotated;
  auto expected = logits.sizes().vec();
  expected[1] = 1;
  if (annotated.sizes().vec() != expected) {
    throw Error("annotation mask has shape " + shape(annotated) + ", logits " + shape(logits),
                "give the mask as [B, 1, spatial...] at the logits' resolution");
  }
  return annotated.to(logits.scalar_type());
}

// [1, n, 1, ...] for broadcasting a per-channel vector over logits-shaped tensors.
torch::Tensor per_channel(const std::vector<double>& values, const torch::Tensor& like, const char* what) {
  if (values.size() != static_cast<std::size_t>(like.size(1))) {
    throw Error(std::string(what) + " has " + std::to_string(values.size()) + " entries for " +
                    std::to_string(like.size(1)) + " channels",
                "give one value per label channel, or none");
  }
  std::vector<std::int64_t> view(static_cast<std::size_t>(like.dim()), 1);
  view[1] = like.size(1);
  // Without non_blocking, a host-to-GPU copy waits for every kernel queued before it.
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64))
      .to(like.options(), /*non_blocking=*/true)
      .view(view);
}

}  // namespace

torch::Tensor soft_dice_loss(const torch::Tensor& probabilities, const torch::Tensor& target_onehot,
                             const torch::Tensor& annotated, const LossOptions& options) {
  check_logits(probabilities);
  if (target_onehot.sizes() != probabilities.sizes()) {
    throw Error("Dice target has shape " + shape(target_onehot) + ", probabilities " + shape(probabilities),
                "give one target channel per output channel");
  }
  const torch::Tensor mask = annotation_mask(annotated, probabilities);
  std::vector<std::int64_t> axes;
  for (std::int64_t a = 2; a < probabilities.dim(); ++a) axes.push_back(a);
  torch::Tensor y = target_onehot.to(probabilities.scalar_type());
  torch::Tensor p = probabilities;
  if (mask.defined()) {
    y = y * mask;
    p = p * mask;
  }
  torch::Tensor intersection = (p * y).sum(axes);
  torch::Tensor sum_pred = p.sum(axes);
  torch::Tensor sum_gt = y.sum(axes);
  if (options.batch_dice()) {
    intersection = intersection.sum(0);
    sum_pred = sum_pred.sum(0);
    sum_gt = sum_gt.sum(0);
    if (options.batch_sum_across_ranks()) {
      const torch::Tensor global = options.batch_sum_across_ranks()(torch::stack({intersection, sum_pred, sum_gt}));
      intersection = global[0];
      sum_pred = global[1];
      sum_gt = global[2];
    }
  }
  const double smooth = options.dice_smooth();
  torch::Tensor dice = (2 * intersection + smooth) / (sum_gt + sum_pred + smooth).clamp_min(kMinDenominator);
  if (dice.dim() == 2) dice = dice.mean(0);  // per sample → per channel
  if (options.channel_weights().empty()) return -dice.mean();
  const torch::Tensor weights = per_channel(options.channel_weights(), probabilities, "channel_weights").flatten();
  return -(dice * weights).sum() / weights.sum().clamp_min(kMinDenominator);
}

torch::Tensor masked_bce_with_logits(const torch::Tensor& logits, const torch::Tensor& target,
                                     const torch::Tensor& annotated, const LossOptions& options) {
  check_logits(logits);
  if (target.sizes() != logits.sizes()) {
    throw Error("sigmoid target has shape " + shape(target) + ", logits " + shape(logits),
                "give one 0/1 target channel per network output");
  }
  torch::Tensor pos_weight;
  if (!options.pos_weight().empty()) pos_weight = per_channel(options.pos_weight(), logits, "pos_weight")[0];
  torch::Tensor per_voxel = torch::binary_cross_entropy_with_logits(
      logits, target.to(logits.scalar_type()), /*weight=*/{}, pos_weight, at::Reduction::None);
  const torch::Tensor mask = annotation_mask(annotated, logits);
  // Unlike nnU-Net's masked BCE (Σ over channels / Σ mask), this divides by voxels × channels
  // too, so a mask of all ones gives exactly the unmasked mean.
  torch::Tensor channel_total = torch::full({}, static_cast<double>(logits.size(1)), logits.options());
  if (!options.channel_weights().empty()) {
    const torch::Tensor weights = per_channel(options.channel_weights(), logits, "channel_weights");
    per_voxel = per_voxel * weights;
    channel_total = weights.sum();
  }
  if (!mask.defined()) return per_voxel.sum() / (channel_total * (per_voxel.numel() / logits.size(1))).clamp_min(kMinDenominator);
  return (per_voxel * mask).sum() / (mask.sum() * channel_total).clamp_min(kMinDenominator);
}

namespace {

// Class indices with ignored voxels set to 0 (any valid class: they are masked out), checked
// to lie in [0, K) where annotated when they are on the CPU. On a GPU the check would make every
// loss call wait for the device (it is read on the host), so it is left to the producer of the
// targets (LabelEncoding::training_target, in range by construction, made on the CPU).
torch::Tensor safe_class_indices(const torch::Tensor& logits, const torch::Tensor& target_index,
                                 const torch::Tensor& mask) {
  auto expected = logits.sizes().vec();
  expected[1] = 1;
  if (target_index.sizes().vec() != expected || target_index.is_floating_point()) {
    throw Error("softmax target has shape " + shape(target_index) + " (" + std::string(c10::toString(target_index.scalar_type())) +
                    "), logits " + shape(logits),
                "give class indices as an integer tensor [B, 1, spatial...]");
  }
  torch::Tensor index = target_index.to(torch::kLong);
  if (mask.defined()) index = torch::where(mask > 0, index, torch::zeros_like(index));
  if (index.is_cpu() && ((index < 0) | (index >= logits.size(1))).any().item<bool>()) {
    throw Error("softmax target has a class index outside [0, " + std::to_string(logits.size(1)) + ") at an annotated voxel",
                "mark ignored voxels in the annotation mask, and give the network background + one output per channel");
  }
  return index;
}

// [K] class weights for CE: background 1, then the channel weights (powerset: the largest weight of
// the combination's channels); undefined when none.
torch::Tensor class_weights(const LossOptions& options, const torch::Tensor& logits) {
  if (options.channel_weights().empty()) return {};
  std::vector<double> weights{1.0};
  if (options.powerset_membership().defined()) {
    const torch::Tensor membership = options.powerset_membership().to(torch::kCPU, torch::kFloat).contiguous();
    const auto member = membership.accessor<float, 2>();
    if (membership.size(1) != static_cast<std::int64_t>(options.channel_weights().size())) {
      throw Error("channel_weights has " + std::to_string(options.channel_weights().size()) + " entries for " +
                      std::to_string(membership.size(1)) + " channels",
                  "give one value per label channel, or none");
    }
    for (std::int64_t k = 1; k < membership.size(0); ++k) {
      double w = 0;
      for (std::int64_t c = 0; c < membership.size(1); ++c) {
        if (member[k][c] > 0) w = std::max(w, options.channel_weights()[static_cast<std::size_t>(c)]);
      }
      weights.push_back(w > 0 ? w : 1.0);
    }
  } else {
    weights.insert(weights.end(), options.channel_weights().begin(), options.channel_weights().end());
  }
  return per_channel(weights, logits, "channel_weights (with background)").flatten();
}

torch::Tensor cross_entropy_of_indices(const torch::Tensor& logits, const torch::Tensor& index,
                                       const torch::Tensor& mask, const LossOptions& options) {
  torch::Tensor nll = -torch::log_softmax(logits, 1).gather(1, index);  // [B, 1, ...]
  torch::Tensor weight = mask;
  const torch::Tensor table = class_weights(options, logits);
  if (table.defined()) {
    const torch::Tensor voxel_weight = table.index_select(0, index.flatten()).view(index.sizes());
    weight = weight.defined() ? weight * voxel_weight : voxel_weight;
  }
  if (!weight.defined()) return nll.mean();
  return (nll * weight).sum() / weight.sum().clamp_min(kMinDenominator);
}

}  // namespace

torch::Tensor masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target_index,
                                   const torch::Tensor& annotated, const LossOptions& options) {
  check_logits(logits);
  const torch::Tensor mask = annotation_mask(annotated, logits);
  return cross_entropy_of_indices(logits, safe_class_indices(logits, target_index, mask), mask, options);
}

torch::Tensor bce_and_dice_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                const torch::Tensor& annotated, const LossOptions& options) {
  const torch::Tensor bce = masked_bce_with_logits(logits, target, annotated, options);
  const torch::Tensor dice = soft_dice_loss(torch::sigmoid(logits), target, annotated, options);
  return options.classification_weight() * bce + options.dice_weight() * dice;
}

torch::Tensor ce_and_dice_loss(const torch::Tensor& logits, const torch::Tensor& target_index,
                               const torch::Tensor& annotated, const LossOptions& options) {
  check_logits(logits);
  if (logits.size(1) < 2) {
    throw Error("softmax loss got " + std::to_string(logits.size(1)) + " output channel", "use background + one output per channel");
  }
  const torch::Tensor mask = annotation_mask(annotated, logits);
  const torch::Tensor index = safe_class_indices(logits, target_index, mask);
  const torch::Tensor ce = cross_entropy_of_indices(logits, index, mask, options);
  const torch::Tensor onehot = torch::zeros_like(logits).scatter_(1, index, 1.0);
  const std::int64_t classes = logits.size(1);
  const torch::Tensor foreground_probabilities = torch::softmax(logits, 1).narrow(1, 1, classes - 1);
  const torch::Tensor dice = soft_dice_loss(foreground_probabilities, onehot.narrow(1, 1, classes - 1), mask, options);
  return options.classification_weight() * ce + options.dice_weight() * dice;
}

torch::Tensor ce_and_marginal_dice_loss(const torch::Tensor& logits, const torch::Tensor& target_index,
                                        const torch::Tensor& annotated, const LossOptions& options) {
  check_logits(logits);
  const torch::Tensor& membership_option = options.powerset_membership();
  if (!membership_option.defined() || membership_option.dim() != 2 || membership_option.size(0) != logits.size(1)) {
    throw Error("the powerset loss needs a [K, C] membership table for the " + std::to_string(logits.size(1)) + " outputs",
                "set LossOptions::powerset_membership from the run's LabelEncoding");
  }
  const torch::Tensor mask = annotation_mask(annotated, logits);
  const torch::Tensor index = safe_class_indices(logits, target_index, mask);
  const torch::Tensor ce = cross_entropy_of_indices(logits, index, mask, options);
  const torch::Tensor membership = membership_option.to(logits.device(), logits.scalar_type(), /*non_blocking=*/true);
  // Channel targets: the target combination's membership row; probabilities: the marginals.
  std::vector<std::int64_t> rows_shape = index.sizes().vec();  // [B, 1, ...] → [B, ..., C]
  rows_shape.erase(rows_shape.begin() + 1);
  rows_shape.push_back(membership.size(1));
  const torch::Tensor channel_target = membership.index_select(0, index.flatten()).view(rows_shape).movedim(-1, 1);
  const torch::Tensor marginals = torch::matmul(torch::softmax(logits, 1).movedim(1, -1), membership).movedim(-1, 1);
  const torch::Tensor dice = soft_dice_loss(marginals, channel_target, mask, options);
  return options.classification_weight() * ce + options.dice_weight() * dice;
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                const torch::Tensor& annotated, const LossOptions& options) {
  switch (options.kind()) {
    case LossKind::bce_and_dice: return bce_and_dice_loss(logits, target, annotated, options);
    case LossKind::ce_and_dice: return ce_and_dice_loss(logits, target, annotated, options);
    case LossKind::ce_and_marginal_dice: return ce_and_marginal_dice_loss(logits, target, annotated, options);
  }
  throw Error("unknown loss kind", "use LossKind::bce_and_dice or LossKind::ce_and_dice");
}

}  // namespace mlseg
