#include "mlseg/planning/remedies.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "mlseg/core/error.h"
#include "mlseg/core/text_table.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

// plans.json's per-channel object (name → number) as one value per channel; `fallback` for a
// missing name. Throws for a value that is not a finite number >= `minimum`.
std::vector<double> per_channel_values(const Json& plans, const char* key, const std::vector<std::string>& channel_names,
                                       double fallback, double minimum, const std::string& source) {
  std::vector<double> values(channel_names.size(), fallback);
  if (!plans.contains(key)) return values;
  const Json& object = plans[key];
  if (!object.is_object()) {
    throw Error(std::string(key) + " is not an object of channel name → number", "write e.g. {\"lesion\": 2.0}",
                {source, "", ""});
  }
  for (const auto& [name, value] : object.items()) {
    const auto found = std::find(channel_names.begin(), channel_names.end(), name);
    if (found == channel_names.end()) {
      throw Error(std::string(key) + " names \"" + name + "\", which is not a label channel", "use the names of channel_names",
                  {source, "", ""});
    }
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < minimum) {
      throw Error(std::string(key) + "." + name + " is " + value.dump() + ", not a finite number >= " + format_fixed(minimum, 0),
                  "set a number >= " + format_fixed(minimum, 0) + " (or rerun `mlseg plan`)", {source, "", ""});
    }
    values[static_cast<std::size_t>(found - channel_names.begin())] = value.get<double>();
  }
  return values;
}

bool all_equal_to(const std::vector<double>& values, double target) {
  return std::all_of(values.begin(), values.end(), [&](double v) { return v == target; });
}

}  // namespace

SamplingChoice parse_sampling_choice(const std::string& text) {
  if (text == "plan") return SamplingChoice::plan;
  if (text == "uniform") return SamplingChoice::uniform;
  if (text == "inverse_frequency") return SamplingChoice::inverse_frequency;
  throw Error("unknown --sampling '" + text + "'", "use plan (default: what plans.json says), uniform or inverse_frequency");
}

std::string Remedies::summary() const {
  if (active.empty()) return "remedies: none (" + inactive_reason + ")";
  std::string text = "remedies:";
  for (std::size_t i = 0; i < active.size(); ++i) {
    text += (i ? "; " : " ") + active[i].substr(0, active[i].find(':'));
  }
  return text;
}

Json Remedies::to_json() const {
  Json json;
  json["active"] = active;
  if (!inactive_reason.empty()) json["inactive_reason"] = inactive_reason;
  json["plan_reason"] = plan_reason;
  json["sample_channels_by_weight"] = sample_channels_by_weight;
  json["sampling_weights"] = sampling_weights;
  json["bce_pos_weight"] = bce_pos_weight.empty() ? Json(nullptr) : Json(bce_pos_weight);
  json["loss_channel_weights"] = loss_channel_weights.empty() ? Json(nullptr) : Json(loss_channel_weights);
  return json;
}

Remedies resolve_remedies(const Json& plans, const LabelEncoding& encoding, const std::vector<std::string>& channel_names,
                          const RemedyOptions& options, const std::string& source) {
  Remedies r;
  const Json planned = plans.value("remedies", Json::object());
  r.plan_reason = planned.is_object() ? planned.value("reason", std::string()) : std::string();
  r.sampling_weights = per_channel_values(plans, "sampling_weights", channel_names, 1.0, 0.0, source);
  const std::vector<double> pos_weight = per_channel_values(plans, "bce_pos_weight", channel_names, 1.0, 0.0, source);
  const std::vector<double> loss_weights = per_channel_values(plans, "loss_channel_weights", channel_names, 1.0, 0.0, source);
  if (options.nnunet_defaults) {
    r.inactive_reason = "--nnunet-defaults: uniform channel choice, no loss weights";
    return r;
  }
  const std::string why = r.plan_reason.empty() ? "" : " (" + r.plan_reason + ")";
  const bool plan_samples = planned.is_object() && planned.value("sampling", std::string("uniform")) == "inverse_frequency";
  r.sample_channels_by_weight = options.sampling == SamplingChoice::inverse_frequency ||
                                (options.sampling == SamplingChoice::plan && plan_samples);
  if (r.sample_channels_by_weight) {
    r.active.push_back("sampling by weight: forced patches pick their channel by plans.json sampling_weights" +
                       (options.sampling == SamplingChoice::inverse_frequency ? std::string(" (--sampling inverse_frequency)") : why));
  }
  const bool plan_pos_weight = planned.is_object() && planned.value("bce_pos_weight", false);
  if (encoding.kind() == EncodingKind::sigmoid && plan_pos_weight && !all_equal_to(pos_weight, 1.0)) {
    r.bce_pos_weight = pos_weight;
    std::string values;
    for (std::size_t c = 0; c < channel_names.size(); ++c) values += (c ? ", " : "") + channel_names[c] + " " + format_fixed(pos_weight[c], 2);
    r.active.push_back("BCE pos_weight: plans.json bce_pos_weight (" + values + ")");
  }
  if (!all_equal_to(loss_weights, 1.0)) {
    r.loss_channel_weights = loss_weights;
    r.active.push_back("loss channel weights: plans.json loss_channel_weights");
  }
  if (r.active.empty()) {
    r.inactive_reason = r.plan_reason.empty() ? "plans.json asks for none" : r.plan_reason;
  }
  return r;
}

PlannedRemedies plan_remedies(const std::vector<std::string>& channel_names, const std::vector<double>& selection_probability,
                              const std::vector<double>& raw_pos_weight, const LabelEncoding& encoding) {
  PlannedRemedies p;
  double lowest = 0, highest = 0;
  std::string rarest, commonest;
  for (std::size_t c = 0; c < channel_names.size() && c < selection_probability.size(); ++c) {
    const double s = selection_probability[c];
    if (!(s > 0)) continue;  // absent everywhere: nothing to sample
    if (rarest.empty() || s < lowest) {
      lowest = s;
      rarest = channel_names[c];
    }
    if (commonest.empty() || s > highest) {
      highest = s;
      commonest = channel_names[c];
    }
  }
  p.imbalance = lowest > 0 && highest / lowest >= kImbalanceRatio;
  if (p.imbalance) {
    p.reason = "analyze found imbalance: nnU-Net would centre forced patches on \"" + rarest + "\" with probability " +
               format_fixed(lowest, 3) + ", on \"" + commonest + "\" with " + format_fixed(highest, 3) + " (" + format_fixed(highest / lowest, 1) +
               "x)";
  } else {
    p.reason = "no imbalance: the channels' selection probabilities differ by less than " + format_fixed(kImbalanceRatio, 1) + "x";
  }
  for (std::size_t c = 0; c < channel_names.size(); ++c) {
    const double raw = c < raw_pos_weight.size() ? raw_pos_weight[c] : 1.0;
    const double tempered = std::clamp(std::sqrt(std::max(raw, 1.0)), 1.0, kMaxPlannedPosWeight);
    p.bce_pos_weight.push_back(p.imbalance && encoding.kind() == EncodingKind::sigmoid ? std::round(tempered * 100) / 100 : 1.0);
  }
  return p;
}

std::vector<RemedyProblem> check_remedy_keys(const Json& plans) {
  std::vector<RemedyProblem> problems;
  const std::vector<std::string> channels = plans.value("channel_names", std::vector<std::string>{});
  for (const char* key : {"sampling_weights", "bce_pos_weight", "loss_channel_weights"}) {
    try {
      per_channel_values(plans, key, channels, 1.0, 0.0, "plans.json");
    } catch (const Error& e) {
      problems.push_back({key, e.problem(), e.fix()});
    }
  }
  if (plans.contains("remedies")) {
    const Json& r = plans["remedies"];
    if (!r.is_object()) {
      problems.push_back({"remedies", "is not an object", "write {\"sampling\": \"inverse_frequency\", \"bce_pos_weight\": true}"});
    } else {
      const Json sampling = r.value("sampling", Json("uniform"));
      if (!sampling.is_string() || (sampling != "uniform" && sampling != "inverse_frequency")) {
        problems.push_back({"remedies.sampling", "is " + sampling.dump(), "set \"uniform\" or \"inverse_frequency\""});
      }
      if (r.contains("bce_pos_weight") && !r["bce_pos_weight"].is_boolean()) {
        problems.push_back({"remedies.bce_pos_weight", "is not true or false", "set true (apply bce_pos_weight) or false"});
      }
    }
  }
  return problems;
}

}  // namespace mlseg
