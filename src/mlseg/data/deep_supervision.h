#pragma once
// Deep-supervision targets: the label codes at every decoder output's resolution, downsampled
// with PyTorch's "nearest-exact" as nnU-Net's DownsampleSegForDSTransform does. Codes are copied
// whole, so overlapping channels and the ignore flag survive unchanged.
#include <array>
#include <cstdint>
#include <vector>

#include "mlseg/labels/label_code.h"

namespace mlseg {

/// PyTorch 'nearest-exact' source indices for resizing n_in to n_out:
/// floor((j + 0.5) * n_in / n_out), clamped (deep-supervision targets, simulated low resolution).
std::vector<std::int64_t> nearest_exact_indices(std::int64_t n_in, std::int64_t n_out);

/// nnU-Net's _get_deep_supervision_scales: 1 / cumulative product of the per-stage strides
/// (z, y, x), one entry per stage except the bottleneck, full resolution first.
std::vector<std::array<double, 3>> deep_supervision_scales(const std::vector<std::array<std::int64_t, 3>>& strides_zyx);

/// One code volume per scale; shape round(size * scale) per axis (half to even, at least 1).
/// A scale of 1 on every axis returns `codes` itself (shared storage, not a copy).
std::vector<CodeVolume> deep_supervision_targets(const CodeVolume& codes,
                                                 const std::vector<std::array<double, 3>>& scales_zyx);

}  // namespace mlseg
