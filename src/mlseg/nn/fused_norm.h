#pragma once
// The fused inference kernel of nnU-Net's conv blocks: InstanceNorm (affine) and the LeakyReLU
// after it in one two-pass kernel (statistics, then normalise + affine + activation in place),
// instead of LibTorch's batch-norm-based instance norm and a separate activation pass. Networks
// build their fused_forward (segmentation_network.h) from it. CPU, float32, no autograd.
#include <torch/types.h>

namespace mlseg {

/// In place on x [B, C, spatial...] (float32 or bfloat16, contiguous, CPU; statistics and
/// arithmetic in float whatever the storage): per (b, c) instance normalisation
/// (biased variance, `eps`), then · weight[c] + bias[c], then LeakyReLU(`slope`); slope 1 is no
/// activation (a norm the block's residual addition follows). Throws mlseg::Error for another x.
void instance_norm_leaky_relu_(torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps, double slope);

}  // namespace mlseg
