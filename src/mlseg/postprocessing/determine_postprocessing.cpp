#include "mlseg/postprocessing/determine_postprocessing.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "mlseg/core/case_loop.h"
#include "mlseg/core/error.h"
#include "mlseg/data/connected_components.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/label_folder.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/metrics/aggregation.h"
#include "mlseg/metrics/overlap_metrics.h"
#include "mlseg/metrics/tensor_metrics.h"

namespace mlseg {
using Json = nlohmann::ordered_json;

namespace {

// One channel of one case: each predicted component's true and false positives.
struct ChannelComponents {
  std::vector<std::int64_t> size, tp, fp;  // per component
  std::int64_t reference = 0;              // reference voxels (ignored ones left out)
  std::int64_t largest = -1;               // index of the largest component (first of equals)
};

using KeepRule = std::function<bool(const ChannelComponents&, std::size_t)>;

ConfusionCounts counts_kept(const ChannelComponents& channel, const KeepRule& keep) {
  ConfusionCounts counts;
  for (std::size_t k = 0; k < channel.size.size(); ++k) {
    if (!keep(channel, k)) continue;
    counts.tp += channel.tp[k];
    counts.fp += channel.fp[k];
  }
  counts.fn = channel.reference - counts.tp;
  return counts;
}

MetricValue mean_dice(const std::vector<ConfusionCounts>& per_case) {
  std::vector<MetricValue> values;
  values.reserve(per_case.size());
  for (const auto& counts : per_case) values.push_back(dice_from_counts(counts));
  return aggregate_values(values, /*similarity=*/true, EmptyPolicy::exclude).mean;
}

// Strictly higher; an undefined mean never is, and nothing is higher than it.
bool higher(const MetricValue& after, const MetricValue& before) {
  return after.defined() && before.defined() && after.value() > before.value();
}
bool lower(const MetricValue& after, const MetricValue& before) {
  return after.defined() && before.defined() && after.value() < before.value();
}

ChannelComponents channel_components(const torch::Tensor& prediction, const torch::Tensor& valid_reference, const torch::Tensor& ignored) {
  const ComponentLabels components = label_components(prediction);
  ChannelComponents channel;
  const auto n = static_cast<std::int64_t>(components.sizes.size());
  channel.size = components.sizes;
  channel.reference = valid_reference.sum().item<std::int64_t>();
  const torch::Tensor labels = components.labels.to(torch::kLong);
  const torch::Tensor tp = torch::bincount(labels.masked_select(valid_reference), {}, n + 1);
  const torch::Tensor ign =
      ignored.defined() ? torch::bincount(labels.masked_select(ignored), {}, n + 1) : torch::zeros({n + 1}, torch::kLong);
  const auto tp_a = tp.accessor<std::int64_t, 1>(), ign_a = ign.accessor<std::int64_t, 1>();
  for (std::int64_t k = 0; k < n; ++k) {
    channel.tp.push_back(tp_a[k + 1]);
    channel.fp.push_back(channel.size[static_cast<std::size_t>(k)] - tp_a[k + 1] - ign_a[k + 1]);
    if (channel.largest < 0 || channel.size[static_cast<std::size_t>(k)] > channel.size[static_cast<std::size_t>(channel.largest)])
      channel.largest = k;
  }
  return channel;
}

struct CasePair {
  torch::Tensor prediction;  // uint8 [C, Z, Y, X]
  torch::Tensor reference;   // uint8 [C, Z, Y, X]
  torch::Tensor ignored;     // bool [Z, Y, X], undefined when nothing is ignored
};

std::string format_value(const MetricValue& value) { return value.format(4); }

// The prediction folder's cases matched with the reference's labels, read as uint8 masks.
class CasePairs {
 public:
  CasePairs(const PredictionFolderInfo& predictions, const Dataset& reference) : predictions_(predictions), reference_(reference) {
    const std::vector<std::string>& names = predictions.model.channel_names;
    std::vector<std::string> reference_names;
    for (const auto& channel : reference.labels.channels) reference_names.push_back(channel.name);
    if (reference_names != names) {
      throw Error("the predictions' channels differ from the reference dataset's", "score predictions of this dataset",
                  {predictions.folder.string(), "", ""});
    }
    for (const auto& files : reference.training) reference_of_[files.case_id] = &files;
    cases_ = list_prediction_cases(predictions);
    if (cases_.empty()) {
      throw Error("no predicted cases in " + predictions.folder.string(), "run the final validation of every fold first",
                  {predictions.folder.string(), "", ""});
    }
    for (const auto& c : cases_) {
      if (!reference_of_.count(c.case_id)) {
        throw Error("predicted case has no reference in " + reference.root.string(), "score cross-validation predictions of training cases",
                    {c.path.string(), c.case_id, ""});
      }
    }
  }
  std::size_t size() const { return cases_.size(); }
  std::size_t channels() const { return predictions_.model.channel_names.size(); }
  const PredictionFolderCase& at(std::size_t i) const { return cases_[i]; }
  CasePair load(std::size_t i) const {
    const PredictionFolderCase& c = cases_[i];
    const CaseLabels predicted = read_prediction_case(predictions_, c);
    const CaseLabels truth = read_case_labels(reference_, *reference_of_.at(c.case_id));
    if (predicted.code.shape_zyx() != truth.code.shape_zyx()) {
      throw Error("the prediction's grid differs from the reference's", "predict the case on its own grid",
                  {c.path.string(), c.case_id, ""});
    }
    CasePair pair{decode_channels(predicted.code), decode_channels(truth.code), {}};
    const torch::Tensor ignored = ignore_mask(truth.code)[0];
    if (ignored.any().item<bool>()) pair.ignored = ignored;
    return pair;
  }
  /// Runs `fn(i)` for every case on `threads` threads with a progress line; rethrows the first
  /// failure (with its case) afterwards.
  void for_each(const std::string& task, int threads, bool show_progress, const std::function<void(std::size_t)>& fn) const {
    for_each_case(cases_.size(), CaseLoopOptions{task, "cases", threads, show_progress}, fn, [this](std::size_t i) {
      return ErrorLocation{cases_[i].path.string(), cases_[i].case_id, ""};
    });
  }

 private:
  const PredictionFolderInfo& predictions_;
  const Dataset& reference_;
  std::map<std::string, const CaseFiles*> reference_of_;
  std::vector<PredictionFolderCase> cases_;
};

// Channel `channel`'s alternatives scored on its components of every case: keeping the largest
// component (`keep_largest`), and the best removal of small components among the candidate sizes
// below the channel's smallest reference volume (`remove_small`).
std::vector<PostprocessingTrial> channel_trials(int channel, const std::vector<ChannelComponents>& cases, bool keep_largest,
                                                bool remove_small) {
  auto score = [&cases](const KeepRule& keep) {
    std::vector<ConfusionCounts> per_case;
    for (const auto& components : cases) per_case.push_back(counts_kept(components, keep));
    return mean_dice(per_case);
  };
  std::vector<PostprocessingTrial> tried;
  if (keep_largest) {
    PostprocessingTrial largest;
    largest.step = {PostprocessingKind::keep_largest, channel, 0};
    largest.dice_after = score([](const ChannelComponents& ch, std::size_t k) { return static_cast<std::int64_t>(k) == ch.largest; });
    tried.push_back(largest);
  }
  if (!remove_small) return tried;
  std::int64_t smallest_reference = -1;
  for (const auto& components : cases) {
    if (components.reference > 0 && (smallest_reference < 0 || components.reference < smallest_reference))
      smallest_reference = components.reference;
  }
  std::optional<PostprocessingTrial> best_small;
  for (const std::int64_t size : kRemoveSmallCandidates) {
    if (smallest_reference < 0 || size >= smallest_reference) break;
    PostprocessingTrial small;
    small.step = {PostprocessingKind::remove_small, channel, size};
    small.dice_after = score([size](const ChannelComponents& ch, std::size_t k) { return ch.size[k] >= size; });
    if (!best_small || higher(small.dice_after, best_small->dice_after)) best_small = small;
  }
  if (best_small) tried.push_back(*best_small);
  return tried;
}

// The better alternative (the earlier among equals) is kept if it raises the channel's Dice
// `current`; every trial gets its Dice before and why it was kept or dropped.
void choose_channel_step(std::vector<PostprocessingTrial>& tried, const MetricValue& current, const std::string& name) {
  int best = -1;
  for (std::size_t t = 0; t < tried.size(); ++t) {
    tried[t].dice_before = current;
    if (best < 0 || higher(tried[t].dice_after, tried[static_cast<std::size_t>(best)].dice_after)) best = static_cast<int>(t);
  }
  for (std::size_t t = 0; t < tried.size(); ++t) {
    const bool up = higher(tried[t].dice_after, current);
    tried[t].kept = up && static_cast<int>(t) == best;
    const bool tie = best >= 0 && !higher(tried[static_cast<std::size_t>(best)].dice_after, tried[t].dice_after);
    tried[t].why = !up             ? name + " Dice not up"
                   : tried[t].kept ? name + " Dice up"
                   : tie           ? name + " Dice up as much: the earlier step is kept"
                                   : name + " Dice up, the other step more";
  }
}

}  // namespace

CrossValidationScore score_cross_validation(const PredictionFolderInfo& predictions, const Dataset& reference, int threads,
                                            bool show_progress) {
  const CasePairs pairs(predictions, reference);
  std::vector<std::vector<ConfusionCounts>> counts(pairs.channels(), std::vector<ConfusionCounts>(pairs.size()));
  pairs.for_each("score " + predictions.folder.filename().string(), threads, show_progress, [&](std::size_t i) {
    const CasePair pair = pairs.load(i);
    const auto case_counts = count_confusion_masks(pair.prediction, pair.reference, pair.ignored);
    for (std::size_t c = 0; c < pairs.channels(); ++c) counts[c][i] = case_counts[c];
  });
  CrossValidationScore score;
  score.cases = static_cast<std::int64_t>(pairs.size());
  for (const auto& channel : counts) score.dice.push_back(mean_dice(channel));
  score.foreground = foreground_mean(score.dice).value;
  return score;
}

PostprocessingDecision determine_postprocessing(const PredictionFolderInfo& predictions, const Dataset& reference,
                                                const DeterminePostprocessingOptions& options) {
  const std::vector<std::string>& names = predictions.model.channel_names;
  const CasePairs pairs(predictions, reference);
  const std::size_t channels = pairs.channels();
  const int threads = options.threads;

  // Pass 1: every channel as predicted, and after keeping the foreground's largest component.
  std::vector<std::vector<ConfusionCounts>> base(channels, std::vector<ConfusionCounts>(pairs.size())), foreground = base;
  pairs.for_each("postprocessing 1/2", threads, options.show_progress, [&](std::size_t i) {
    const CasePair pair = pairs.load(i);
    const auto before = count_confusion_masks(pair.prediction, pair.reference, pair.ignored);
    const torch::Tensor keep = keep_largest_component(pair.prediction.amax(0)).to(torch::kUInt8);
    const auto after = count_confusion_masks(pair.prediction * keep.unsqueeze(0), pair.reference, pair.ignored);
    for (std::size_t c = 0; c < channels; ++c) {
      base[c][i] = before[c];
      foreground[c][i] = after[c];
    }
  });
  PostprocessingDecision decision;
  decision.plan.channel_names = names;
  decision.cases = static_cast<std::int64_t>(pairs.size());
  std::vector<MetricValue> before_means, foreground_means;
  for (std::size_t c = 0; c < channels; ++c) {
    before_means.push_back(mean_dice(base[c]));
    foreground_means.push_back(mean_dice(foreground[c]));
  }
  decision.dice_before = before_means;
  decision.foreground_before = foreground_mean(before_means).value;
  PostprocessingTrial foreground_trial;
  foreground_trial.step.kind = PostprocessingKind::keep_largest_foreground;
  foreground_trial.dice_before = decision.foreground_before;
  foreground_trial.dice_after = foreground_mean(foreground_means).value;
  foreground_trial.kept = higher(foreground_trial.dice_after, foreground_trial.dice_before);
  foreground_trial.why = foreground_trial.kept ? "foreground mean Dice up" : "foreground mean Dice not up";
  for (std::size_t c = 0; c < channels && foreground_trial.kept; ++c) {
    if (lower(foreground_means[c], before_means[c])) {
      foreground_trial.kept = false;
      foreground_trial.why = names[c] + " down: " + format_value(before_means[c]) + " -> " + format_value(foreground_means[c]);
    }
  }
  if (foreground_trial.kept) {
    decision.plan.steps.push_back(foreground_trial.step);
    foreground_trial.why += ", no channel down";
  }
  decision.trials.push_back(foreground_trial);
  std::vector<MetricValue> current = foreground_trial.kept ? foreground_means : before_means;
  decision.dice_after = current;
  if (channels < 2 && !options.allow_remove_small) {
    decision.foreground_after = foreground_mean(current).value;
    return decision;
  }

  // Pass 2: each channel's components (after step 1 when kept), scored for every alternative.
  std::vector<std::vector<ChannelComponents>> components(channels, std::vector<ChannelComponents>(pairs.size()));
  pairs.for_each("postprocessing 2/2", threads, options.show_progress, [&](std::size_t i) {
    CasePair pair = pairs.load(i);
    if (foreground_trial.kept) pair.prediction.mul_(keep_largest_component(pair.prediction.amax(0)).to(torch::kUInt8).unsqueeze(0));
    for (std::size_t c = 0; c < channels; ++c) {
      const auto ci = static_cast<std::int64_t>(c);
      torch::Tensor valid = pair.reference[ci].to(torch::kBool);
      if (pair.ignored.defined()) valid = valid & pair.ignored.logical_not();
      components[c][i] = channel_components(pair.prediction[ci], valid, pair.ignored);
    }
  });
  for (std::size_t c = 0; c < channels; ++c) {
    std::vector<PostprocessingTrial> tried =
        channel_trials(static_cast<int>(c), components[c], /*keep_largest=*/channels > 1, options.allow_remove_small);
    choose_channel_step(tried, current[c], names[c]);
    for (const auto& trial : tried) {
      if (trial.kept) {
        decision.plan.steps.push_back(trial.step);
        decision.dice_after[c] = trial.dice_after;
      }
      decision.trials.push_back(trial);
    }
  }
  decision.foreground_after = foreground_mean(decision.dice_after).value;
  return decision;
}

Json postprocessing_decision_json(const PostprocessingDecision& decision) {
  auto value = [](const MetricValue& v) { return v.defined() ? Json(v.value()) : Json(nullptr); };
  Json json = postprocessing_plan_json(decision.plan);
  json["dice_rule"] = kPostprocessingDiceRule;
  json["cases"] = decision.cases;
  Json before = Json::object(), after = Json::object();
  for (std::size_t c = 0; c < decision.plan.channel_names.size(); ++c) {
    before[decision.plan.channel_names[c]] = value(decision.dice_before[c]);
    after[decision.plan.channel_names[c]] = value(decision.dice_after[c]);
  }
  json["dice_before"] = before;
  json["dice_after"] = after;
  json["foreground_dice_before"] = value(decision.foreground_before);
  json["foreground_dice_after"] = value(decision.foreground_after);
  Json trials = Json::array();
  for (const auto& trial : decision.trials) {
    trials.push_back({{"step", trial.step.describe(decision.plan.channel_names)},
                      {"dice_before", value(trial.dice_before)},
                      {"dice_after", value(trial.dice_after)},
                      {"kept", trial.kept},
                      {"why", trial.why}});
  }
  json["trials"] = trials;
  return json;
}

std::string format_postprocessing_decision(const PostprocessingDecision& decision) {
  std::ostringstream out;
  out << "postprocessing, decided on " << decision.cases << " cross-validation cases (" << kPostprocessingDiceRule << "):\n";
  for (const auto& trial : decision.trials) {
    out << "  " << (trial.kept ? "kept   " : "dropped") << "  " << trial.step.describe(decision.plan.channel_names) << ": Dice "
        << trial.dice_before.format(4) << " -> " << trial.dice_after.format(4) << " (" << trial.why << ")\n";
  }
  out << "  foreground mean Dice " << decision.foreground_before.format(4) << " -> " << decision.foreground_after.format(4)
      << "; plan: " << decision.plan.describe() << "\n";
  return out.str();
}

}  // namespace mlseg
