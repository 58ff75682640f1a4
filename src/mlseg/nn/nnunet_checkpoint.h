#pragma once
// nnU-Net v2's checkpoint (`fold_N/checkpoint_final.pth`, nnUNetTrainer.save_checkpoint): what
// mlseg needs to run the model, read without Python. The optimizer state, the training log and
// the grad scaler are skipped.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlseg {

/// A state dict: parameter and buffer names with their tensors, in the file's order.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct NnunetCheckpoint {
  /// `network_weights` (contiguous CPU tensors) without the keys that repeat another one:
  /// `decoder.encoder.*` (the decoder keeps a reference to the encoder) and `*.all_modules.*`
  /// (ConvDropoutNormReLU lists its conv and norm twice).
  NamedTensors network_weights;
  /// The training class ("nnUNetTrainer", or a variant whose network may differ).
  std::string trainer_name;
  /// Axes (of the spatial patch, 0 = first) test-time mirroring may flip; nullopt when the
  /// checkpoint says None (mirroring off in training, so no mirroring at inference).
  std::optional<std::vector<int>> inference_allowed_mirroring_axes;
  /// init_args.configuration ("3d_fullres", ...), empty when absent.
  std::string configuration;
  /// Epochs trained (current_epoch), -1 when absent.
  std::int64_t epochs_trained = -1;
};

/// Throws mlseg::Error naming `path` when the file cannot be read or has no network_weights.
NnunetCheckpoint read_nnunet_checkpoint(const std::filesystem::path& path);

/// Whether nnU-Net's state dicts hold `key` twice under another name (see network_weights).
bool is_duplicate_nnunet_key(const std::string& key);

}  // namespace mlseg
