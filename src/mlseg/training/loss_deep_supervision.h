#pragma once
// Deep supervision: the loss of every decoder output against the target at its resolution,
// weighted as nnU-Net does (nnUNetTrainer._build_loss, DeepSupervisionWrapper).
#include <torch/types.h>

#include <cstddef>
#include <vector>

#include "mlseg/training/loss_options.h"

namespace mlseg {

/// Weight of output i (0 = full resolution): 1/2^i, the lowest resolution set to 0, normalised
/// to sum 1. 3 outputs → [2/3, 1/3, 0]; 4 → [4/7, 2/7, 1/7, 0]; 1 output → [1].
std::vector<double> deep_supervision_weights(std::size_t num_outputs);

/// Σ_i w_i · segmentation_loss(outputs[i], targets[i], annotated[i]), skipping outputs of
/// weight 0 (as nnU-Net). `outputs` full resolution first, as PlainConvUNet returns them;
/// `targets` and `annotated` per scale in the same order (`annotated` may be empty when every
/// voxel is annotated). Throws mlseg::Error when the counts differ.
torch::Tensor deep_supervision_loss(const std::vector<torch::Tensor>& outputs, const std::vector<torch::Tensor>& targets,
                                    const std::vector<torch::Tensor>& annotated, const LossOptions& options);

}  // namespace mlseg
