#pragma once
// Training targets from label codes, after augmentation (and per deep-supervision scale):
// what the loss compares the network's output with, for each encoding.
#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "mlseg/labels/label_code.h"

namespace mlseg {

enum class TargetEncoding {
  sigmoid,  ///< one binary output per channel (channels may overlap)
  softmax,  ///< background + one class per channel (channels must not overlap)
};

/// "sigmoid" | "softmax" (the plans.json label_encoding strings); anything else throws mlseg::Error.
TargetEncoding parse_target_encoding(const std::string& name);

struct TrainingTargetOptions {
  TORCH_ARG(TargetEncoding, encoding) = TargetEncoding::sigmoid;
  /// softmax: class index of ignored voxels (PyTorch CrossEntropyLoss's default ignore_index).
  TORCH_ARG(std::int64_t, ignore_index) = -100;
};

struct TrainingTarget {
  /// sigmoid: float32 [C, Z, Y, X], 1 where the channel's bit is set (0 at ignored voxels);
  /// softmax: int64 [1, Z, Y, X], 0 background, c + 1 for channel c, ignore_index where ignored.
  torch::Tensor target;
  /// float32 [1, Z, Y, X]: 1 where annotated, 0 where the ignore flag is set (multiply the
  /// per-voxel loss with it).
  torch::Tensor annotated;
  bool has_ignored_voxels = false;
};

/// Throws mlseg::Error when a softmax target meets a voxel with two channels set.
TrainingTarget training_target(const CodeVolume& codes, const TrainingTargetOptions& options = {});
TrainingTarget training_target(const CodeVolume& codes, TargetEncoding encoding);

}  // namespace mlseg
