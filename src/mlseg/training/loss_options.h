#pragma once
// What the training loss is made of and its nnU-Net defaults (nnUNetTrainer._build_loss:
// DC_and_BCE_loss for regions, DC_and_CE_loss for labels, MemoryEfficientSoftDiceLoss).
#include <torch/arg.h>
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "mlseg/labels/label_encoding.h"

namespace mlseg {

struct LossOptions {
  TORCH_ARG(LossKind, kind) = LossKind::bce_and_dice;
  /// Weight of the BCE (sigmoid) or CE (softmax) term; nnU-Net's weight_ce = 1.
  TORCH_ARG(double, classification_weight) = 1.0;
  /// Weight of the soft Dice term; nnU-Net's weight_dice = 1.
  TORCH_ARG(double, dice_weight) = 1.0;
  /// Sum Dice's intersection and sizes over the batch too (one Dice per channel per batch)
  /// instead of one per sample; nnU-Net takes it from plans (configurations.<c>.batch_dice).
  TORCH_ARG(bool, batch_dice) = false;
  /// Added to Dice's numerator and denominator; nnU-Net's smooth = 1e-5.
  TORCH_ARG(double, dice_smooth) = 1e-5;
  /// Per-channel BCE pos_weight (sigmoid only; plans.json bce_pos_weight), one per channel;
  /// empty = none (nnU-Net uses none).
  TORCH_ARG(std::vector<double>, pos_weight);
  /// Per-channel weights of the Dice and BCE/CE terms, one per label channel (softmax: the
  /// background class keeps weight 1 in CE; powerset: a combination's CE weight is the largest
  /// weight of its channels, background 1); empty = all 1 (nnU-Net).
  TORCH_ARG(std::vector<double>, channel_weights);
  /// powerset: float [K, C], 1 where combination k contains channel c (LabelEncoding::membership);
  /// the Dice term scores the channel marginals softmax(logits) · membership.
  TORCH_ARG(torch::Tensor, powerset_membership);
  /// Several ranks with batch_dice: sums batch Dice's per-channel intersection and sizes over the
  /// ranks, with gradient (RunContext::sum_across_ranks_with_grad), so the Dice is the global
  /// batch's, as nnU-Net's AllGatherGrad. Unset: one process.
  TORCH_ARG(std::function<torch::Tensor(const torch::Tensor&)>, batch_sum_across_ranks);
};

}  // namespace mlseg
