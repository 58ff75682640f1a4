#pragma once
// Remedies for rare channels: what `mlseg train` changes against nnU-Net because analyze found
// imbalance, read from plans.json (where `mlseg plan` wrote them and a user may edit them).
//
// The rule (`mlseg plan` writes it, `train` applies what plans.json says):
//  - sampling: forced-foreground patches pick their channel by plans.json "sampling_weights"
//    (analyze's inverse selection probabilities: every channel is centred on equally often)
//    instead of nnU-Net's uniform choice among the case's channels. On when plans.json
//    "remedies.sampling" is "inverse_frequency" (the planner sets it when the channels'
//    nnU-Net selection probabilities differ by more than kImbalanceRatio).
//  - BCE pos_weight (sigmoid only): plans.json "bce_pos_weight" per channel (the planner writes
//    sqrt(negatives / positives) clipped to [1, kMaxPlannedPosWeight]; an edited value is used
//    as is). On when "remedies.bce_pos_weight" is true.
//  - loss channel weights: plans.json "loss_channel_weights" (default all 1: off) weight each
//    channel's Dice and BCE/CE terms.
// `--nnunet-defaults` switches every remedy off: uniform channel choice, no weights.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "mlseg/labels/label_encoding.h"

namespace mlseg {

/// Imbalance: the largest nnU-Net selection probability of a present channel is at least this
/// many times the smallest (planner's rule for switching the remedies on).
inline constexpr double kImbalanceRatio = 2.0;
/// The planner's pos_weight is sqrt(negatives / positives), at most this: enough to lift a rare
/// channel's recall without flooding the prediction (analyze's raw ratio reaches 1e3-1e5).
inline constexpr double kMaxPlannedPosWeight = 3.0;

/// --sampling: where the forced channel choice comes from.
enum class SamplingChoice {
  plan,               ///< plans.json "remedies.sampling" (default)
  uniform,            ///< nnU-Net's
  inverse_frequency,  ///< plans.json "sampling_weights", whatever the plan says
};
SamplingChoice parse_sampling_choice(const std::string& text);  ///< throws mlseg::Error

struct RemedyOptions {
  bool nnunet_defaults = false;  ///< --nnunet-defaults
  SamplingChoice sampling = SamplingChoice::plan;
};

/// What a run applies, resolved from plans.json and the options.
struct Remedies {
  /// Forced patches pick their channel by sampling_weights (else nnU-Net's uniform choice).
  bool sample_channels_by_weight = false;
  std::vector<double> sampling_weights;      ///< per channel (plans.json; 1 when missing)
  std::vector<double> bce_pos_weight;        ///< per channel; empty = none
  std::vector<double> loss_channel_weights;  ///< per channel; empty = none
  /// One line per active remedy, and why ("sampling: forced patches pick their channel by
  /// plans.json sampling_weights (analyze found imbalance: ...)"); empty = nnU-Net's behaviour.
  std::vector<std::string> active;
  /// Why the remedies are off (nnU-Net defaults requested, or no imbalance).
  std::string inactive_reason;
  /// The planner's reason (plans.json remedies.reason).
  std::string plan_reason;

  bool any() const { return !active.empty(); }
  /// "remedies: sampling by weight, BCE pos_weight" / "remedies: none (--nnunet-defaults)".
  std::string summary() const;
  nlohmann::ordered_json to_json() const;
};

/// Throws mlseg::Error naming `source` for malformed values (negative weights, unknown names).
Remedies resolve_remedies(const nlohmann::ordered_json& plans, const LabelEncoding& encoding,
                          const std::vector<std::string>& channel_names, const RemedyOptions& options,
                          const std::string& source);

/// The planner's half: plans.json "remedies", "bce_pos_weight" (tempered) and
/// "loss_channel_weights" from analyze's per-channel statistics.
struct PlannedRemedies {
  bool imbalance = false;
  std::string reason;
  std::vector<double> bce_pos_weight;  ///< sqrt(raw), clipped to [1, kMaxPlannedPosWeight]
};
/// `selection_probability`: nnU-Net's chance per channel of being centred on (labels.json);
/// `raw_pos_weight`: analyze's negatives / positives per channel.
PlannedRemedies plan_remedies(const std::vector<std::string>& channel_names, const std::vector<double>& selection_probability,
                              const std::vector<double>& raw_pos_weight, const LabelEncoding& encoding);

/// The problems of the remedy keys of an edited plans.json (key, problem, fix).
struct RemedyProblem {
  std::string key, problem, fix;
};
std::vector<RemedyProblem> check_remedy_keys(const nlohmann::ordered_json& plans);

}  // namespace mlseg
