#pragma once
// An inference forward pass of a PlainConvUNet that reads the network's own parameters and
// fuses each InstanceNorm (affine) with the LeakyReLU after it into one two-pass kernel
// (statistics, then normalise + affine + activation in place), instead of LibTorch's separate
// batch-norm-based instance norm and activation passes. Convolutions are LibTorch's (oneDNN).
// Same arithmetic as the module's forward up to float rounding; CPU, no autograd.
#include <torch/types.h>

#include "mlseg/inference/sliding_window.h"
#include "mlseg/nn/plain_conv_unet.h"

namespace mlseg {

/// In place on x [B, C, spatial...] (float32, contiguous): per (b, c) instance normalisation
/// (biased variance, `eps`), then · weight[c] + bias[c], then LeakyReLU(`slope`).
void instance_norm_leaky_relu_(torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps, double slope);

/// The full-resolution logits of `network` (deep supervision ignored) for tiles [B, C, ...]
/// (a 2D network's tiles [B, C, 1, Y, X] are squeezed), computed with the fused kernel.
/// The network's parameters are read at each call, so training in between is seen.
TileForward fused_network_tile_forward(const PlainConvUNet& network);

}  // namespace mlseg
