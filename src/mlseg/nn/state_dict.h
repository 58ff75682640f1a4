#pragma once
// Loading parameters and buffers by name (a PyTorch state dict into a LibTorch module). Names are
// the module tree's, as Python prints them ("encoder.stages.0.0.convs.0.conv.weight"), so a
// network whose submodules are named like dynamic_network_architectures' takes nnU-Net's
// weights 1:1.
#include <torch/nn/module.h>
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "mlseg/nn/nnunet_checkpoint.h"

namespace mlseg {

/// Copies every entry of `weights` into the parameter or buffer of the same name of `module`.
/// Throws mlseg::Error located at `source` when names differ (the first few missing and
/// unexpected ones named) or a shape differs (the name and both shapes); `module` is unchanged
/// then. Dtypes are converted to the module's.
void load_named_tensors(torch::nn::Module& module, const NamedTensors& weights, const std::string& source);

}  // namespace mlseg
