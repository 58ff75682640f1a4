#pragma once
// LabelEncoding: how a network's outputs stand for the dataset's label channels — the one seam
// between label codes and everything that trains or predicts (nnU-Net's LabelManager role).
//
//   sigmoid   one output per channel, BCE + soft Dice; channels may overlap.
//   softmax   background + one class per channel, CE + soft Dice; channels never overlap.
//   powerset  one class per observed channel combination (class 0 = background), CE over the
//             combinations + soft Dice on each channel's marginal (the summed probabilities of the
//             combinations that contain it); overlaps are learned as classes of their own.
//
// From a code volume it builds the training target; from logits it gives probabilities,
// per-channel probabilities and codes again. Plans, checkpoints, the trainer, the validator and
// prediction all ask this object instead of branching on an encoding name.
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "mlseg/labels/label_code.h"

namespace mlseg {

enum class EncodingKind { sigmoid, softmax, powerset };
std::string to_string(EncodingKind kind);
/// "sigmoid" | "softmax" | "powerset"; throws mlseg::Error naming `source` otherwise.
EncodingKind parse_encoding_kind(const std::string& text, const std::string& source);

/// What the training loss is made of, per encoding (nnU-Net's _build_loss).
enum class LossKind {
  /// sigmoid: BCEWithLogits + soft Dice on sigmoid probabilities, every channel (DC_and_BCE_loss).
  bce_and_dice,
  /// softmax: CE + soft Dice on softmax probabilities without background (DC_and_CE_loss).
  ce_and_dice,
  /// powerset: CE over combinations + soft Dice on the per-channel marginals.
  ce_and_marginal_dice,
};

/// How label codes are resampled (nnU-Net resize_segmentation: order 1 per label, then threshold).
enum class LabelResampling {
  /// Overlapping channels (sigmoid): every bit, the ignore bit included, is interpolated linearly as
  /// a 0/1 field and kept where it reaches 0.5.
  per_channel_bit,
  /// Labels that are classes (softmax, powerset): each distinct code's indicator is interpolated
  /// linearly and the voxel takes the code of largest weight (ties: the smaller code value), so
  /// no combination appears that the input did not have.
  most_likely_combination,
};

/// The default export of a prediction: one label map (softmax: lossless) or a per-channel code
/// (bitmask up to 64 channels, multihot4d above: lossless for overlapping channels).
enum class DefaultExport { label_map, channel_code };

/// One combination of channels as code words (bit c = channel c, ignore flag clear).
using CombinationCode = std::vector<std::uint64_t>;

/// Class indices of ignored voxels in CE targets (PyTorch CrossEntropyLoss's ignore_index).
inline constexpr std::int64_t kIgnoreClassIndex = -100;
/// The most powerset classes mlseg accepts whatever the memory budget (a class per output channel).
inline constexpr int kMaxPowersetClasses = 4096;

struct TrainingTarget {
  /// sigmoid: float32 [C, Z, Y, X], 1 where the channel's bit is set (0 at ignored voxels);
  /// softmax: int64 [1, Z, Y, X], 0 background, c + 1 for channel c;
  /// powerset: int64 [1, Z, Y, X], the combination's class index. Ignored voxels: kIgnoreClassIndex.
  torch::Tensor target;
  /// float32 [1, Z, Y, X]: 1 where annotated, 0 where the ignore flag is set.
  torch::Tensor annotated;
  bool has_ignored_voxels = false;
};

class LabelEncoding {
 public:
  LabelEncoding() = default;  ///< sigmoid over zero channels (a placeholder to assign to)
  static LabelEncoding sigmoid(int num_channels);
  static LabelEncoding softmax(int num_channels);
  /// Classes: background (always class 0, added when missing) then `combinations` in the order
  /// given (frequent first: an unlisted code maps to the earliest best subset). Throws
  /// mlseg::Error for duplicates, bits beyond the channels, or more than kMaxPowersetClasses.
  static LabelEncoding powerset(int num_channels, const std::vector<CombinationCode>& combinations);
  static LabelEncoding of_kind(EncodingKind kind, int num_channels, const std::vector<CombinationCode>& combinations = {});

  /// Reads "label_encoding" (and, for powerset, "powerset_combinations": a list of lists of
  /// channel names) from a plans.json or a checkpoint's model object. Missing "label_encoding":
  /// sigmoid. Throws mlseg::Error naming `source`.
  static LabelEncoding from_json(const nlohmann::ordered_json& json, const std::vector<std::string>& channel_names,
                                 const std::string& source);
  /// Writes "label_encoding" and, for powerset, "powerset_combinations" into `json`.
  void write_json(nlohmann::ordered_json& json, const std::vector<std::string>& channel_names) const;

  EncodingKind kind() const { return kind_; }
  std::string name() const { return to_string(kind_); }
  int num_channels() const { return num_channels_; }
  /// Network outputs: sigmoid C, softmax C + 1, powerset the number of combinations.
  int num_outputs() const;
  LossKind loss_kind() const;
  LabelResampling label_resampling() const;
  DefaultExport default_export() const;
  /// Outputs are classes of one softmax (softmax, powerset), not independent sigmoids.
  bool outputs_are_classes() const { return kind_ != EncodingKind::sigmoid; }
  /// powerset: the combinations, class by class (class 0 = background, all words zero).
  const std::vector<CombinationCode>& combinations() const { return combinations_; }
  /// powerset: float32 [K, C], 1 where class k contains channel c.
  torch::Tensor membership() const;

  /// The loss target for `codes` (after augmentation, per deep-supervision scale). softmax throws
  /// mlseg::Error at a voxel with two channels; powerset maps a code that is not a class to the
  /// class of its largest listed subset (fewest channel bits dropped, then the earliest class).
  TrainingTarget training_target(const CodeVolume& codes) const;
  /// powerset: the class of one code (ignore flag clear), by the rule above.
  std::int64_t class_of(const CombinationCode& code) const;

  /// Logits → probabilities along `class_dim` (sigmoid per output, softmax over classes).
  torch::Tensor probabilities(const torch::Tensor& logits, std::int64_t class_dim) const;
  /// Probabilities → per-channel probabilities [.., C, ..] along `class_dim`: sigmoid unchanged,
  /// softmax without background, powerset the marginals.
  torch::Tensor channel_probabilities(const torch::Tensor& probabilities, std::int64_t class_dim) const;
  /// Predicted channel masks uint8 [B, C, ...] from logits [B, K, ...]: sigmoid logit > 0, softmax
  /// argmax class c + 1 → channel c, powerset the argmax combination's channels.
  torch::Tensor channel_masks_from_logits(const torch::Tensor& logits) const;
  /// Probabilities or logits [K, Z, Y, X] → the predicted code (same rules; for sigmoid
  /// `are_logits` picks the threshold 0 instead of 0.5).
  CodeVolume code_from_outputs(const torch::Tensor& outputs, bool are_logits) const;
  /// Value of class k outside the cropped region when probabilities are put back into the image
  /// (background certain there).
  double outside_value(std::int64_t output) const;

 private:
  EncodingKind kind_ = EncodingKind::sigmoid;
  int num_channels_ = 0;
  std::vector<CombinationCode> combinations_;
  std::unordered_map<std::string, std::int64_t> class_by_code_;  // key: the words' bytes
};

}  // namespace mlseg
