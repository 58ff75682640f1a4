#pragma once
// Segmentation losses as nnU-Net v2 computes them (training/loss/compound_losses.py, dice.py),
// with an optional mask of annotated voxels that removes ignored voxels from every term.
//
// Layouts: logits [B, K, (Z,) Y, X]; sigmoid targets float [B, C, ...] of 0/1 (K = C);
// softmax targets int64 [B, 1, ...] of class indices 0..K-1 (K = C + 1, 0 = background; the
// value at ignored voxels does not matter); `annotated` [B, 1, ...] float or bool, 1 where
// annotated, or an undefined tensor when every voxel is annotated. Class indices outside [0, K)
// at annotated voxels throw mlseg::Error when the targets are on the CPU; on a GPU that check would
// wait for the device at every call, so there the targets' producer answers for their range.
// Every loss is finite for empty targets, fully ignored batches (then with zero gradient) and
// logits of ±1e4.
#include <torch/types.h>

#include "mlseg/training/loss_options.h"

namespace mlseg {

/// MemoryEfficientSoftDiceLoss on probabilities [B, K, ...] and a one-hot target of the same
/// shape: per channel I = Σ p·y·m, S_gt = Σ y·m, S_pred = Σ p·m over space (and batch with
/// batch_dice), dc = (2I + smooth) / max(S_gt + S_pred + smooth, 1e-8); returns −(weighted) mean
/// of dc over channels (and samples). In [−1, 0).
torch::Tensor soft_dice_loss(const torch::Tensor& probabilities, const torch::Tensor& target_onehot,
                             const torch::Tensor& annotated, const LossOptions& options);

/// BCEWithLogits (with pos_weight), mean over annotated voxels × channels (channel-weighted);
/// 0 when nothing is annotated.
torch::Tensor masked_bce_with_logits(const torch::Tensor& logits, const torch::Tensor& target,
                                     const torch::Tensor& annotated, const LossOptions& options);

/// Cross-entropy, mean over annotated voxels (class-weighted as PyTorch's CrossEntropyLoss);
/// 0 when nothing is annotated.
torch::Tensor masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target_index,
                                   const torch::Tensor& annotated, const LossOptions& options);

/// classification_weight · BCE + dice_weight · soft Dice(sigmoid(logits), target), all channels.
torch::Tensor bce_and_dice_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                const torch::Tensor& annotated, const LossOptions& options = {});

/// classification_weight · CE + dice_weight · soft Dice(softmax(logits)[:, 1:], one_hot(target)[:, 1:]).
torch::Tensor ce_and_dice_loss(const torch::Tensor& logits, const torch::Tensor& target_index,
                               const torch::Tensor& annotated, const LossOptions& options = {});

/// powerset: classification_weight · CE over the K combinations + dice_weight · soft Dice of the
/// channel marginals softmax(logits) · membership against the target combination's channels
/// (options.powerset_membership [K, C]).
torch::Tensor ce_and_marginal_dice_loss(const torch::Tensor& logits, const torch::Tensor& target_index,
                                        const torch::Tensor& annotated, const LossOptions& options);

/// bce_and_dice_loss, ce_and_dice_loss or ce_and_marginal_dice_loss by options.kind().
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                const torch::Tensor& annotated, const LossOptions& options);

}  // namespace mlseg
