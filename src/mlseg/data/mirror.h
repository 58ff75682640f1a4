#pragma once
// Mirroring: the last training transform (nnU-Net's MirrorTransform), and the flips test-time
// augmentation undoes. Works in place on any [N, Z, Y, X] volume: images and code words alike.
#include <torch/types.h>

#include <array>

#include "mlseg/labels/label_code.h"

namespace mlseg {

/// Flips `volume` ([N, Z, Y, X], contiguous CPU, element size 1, 2, 4 or 8 bytes) in place along
/// every spatial axis i with flip_zyx[i], in one pass.
void mirror_in_place(torch::Tensor& volume, const std::array<bool, 3>& flip_zyx);
void mirror_in_place(CodeVolume& codes, const std::array<bool, 3>& flip_zyx);

}  // namespace mlseg
