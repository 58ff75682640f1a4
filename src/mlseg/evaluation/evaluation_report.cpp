#include "mlseg/evaluation/evaluation_report.h"

#include <sstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/text_table.h"
#include "mlseg/io/json_file.h"

namespace mlseg {

namespace {

using Json = nlohmann::ordered_json;

Json value_json(const MetricValue& value) { return value.defined() ? Json(value.value()) : Json(nullptr); }

Json key_json(const std::optional<std::string>& key) { return key ? Json(*key) : Json(nullptr); }

void add_counts_json(Json& out, const ConfusionCounts& counts) {
  out["TP"] = counts.tp;
  out["FP"] = counts.fp;
  out["FN"] = counts.fn;
  out["TN"] = counts.tn;
  out["n_ref"] = counts.ref_voxels();
  out["n_pred"] = counts.pred_voxels();
}

// Null values of a map of metric → value get their reasons in a "reasons" object.
void add_values_json(Json& out, const std::vector<std::pair<std::string, MetricValue>>& values) {
  Json reasons = Json::object();
  for (const auto& [key, value] : values) {
    out[key] = value_json(value);
    if (!value.defined()) reasons[key] = to_string(value.reason());
  }
  if (!reasons.empty()) out["reasons"] = reasons;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string csv_number(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

std::string metric_label(Metric metric) {
  const std::string unit = metric_unit(metric);
  return metric_key(metric) + (unit.empty() || metric_key(metric).find(unit) != std::string::npos ? "" : " (" + unit + ")");
}

std::string undefined_summary(const MetricAggregate& a, EmptyPolicy policy) {
  std::string text;
  for (UndefinedReason reason : kAllUndefinedReasons) {
    const std::int64_t n = a.n_undefined[static_cast<int>(reason)];
    if (n > 0) text += (text.empty() ? "" : ", ") + std::to_string(n) + " " + to_string(reason);
  }
  if (text.empty()) return "-";
  if (a.n_substituted > 0) text += " (counted as " + std::string(policy == EmptyPolicy::one ? "1" : "0") + ")";
  return text;
}

}  // namespace

Json evaluation_to_json(const EvaluationResult& result) {
  Json root = Json::object();
  Json per_case = Json::array();
  for (const CaseEvaluation& evaluation : result.cases) {
    Json entry = Json::object();
    Json metrics = Json::object();
    for (std::size_t k = 0; k < result.channels.size(); ++k) {
      const ChannelCaseMetrics& m = evaluation.channels.at(k);
      Json channel = Json::object();
      channel["nnunet_key"] = key_json(result.channels[k].nnunet_key);
      add_counts_json(channel, m.counts);
      bool any_undefined = false;
      for (Metric metric : result.metrics.metrics) {
        const MetricValue& value = m.values.at(metric);
        channel[metric_key(metric)] = value_json(value);
        any_undefined = any_undefined || !value.defined();
      }
      if (any_undefined) channel["reason"] = to_string(*empty_reason(m.state));
      metrics[result.channels[k].name] = channel;
    }
    entry["metrics"] = metrics;
    entry["prediction_file"] = evaluation.prediction_file.empty() ? Json(nullptr) : Json(evaluation.prediction_file.string());
    entry["reference_file"] = evaluation.reference_file.string();
    entry["case_id"] = evaluation.case_id;
    per_case.push_back(entry);
  }
  root["metric_per_case"] = per_case;

  Json mean = Json::object();
  const double n_cases = static_cast<double>(std::max<std::size_t>(result.cases.size(), 1));
  for (const ChannelSummary& summary : result.channels) {
    Json channel = Json::object();
    channel["nnunet_key"] = key_json(summary.nnunet_key);
    std::vector<std::pair<std::string, MetricValue>> values;
    for (Metric metric : result.metrics.metrics) values.emplace_back(metric_key(metric), summary.aggregates.at(metric).mean);
    add_values_json(channel, values);
    // nnU-Net also averages the counts over cases.
    channel["TP"] = static_cast<double>(summary.pooled_counts.tp) / n_cases;
    channel["FP"] = static_cast<double>(summary.pooled_counts.fp) / n_cases;
    channel["FN"] = static_cast<double>(summary.pooled_counts.fn) / n_cases;
    channel["TN"] = static_cast<double>(summary.pooled_counts.tn) / n_cases;
    channel["n_ref"] = static_cast<double>(summary.pooled_counts.ref_voxels()) / n_cases;
    channel["n_pred"] = static_cast<double>(summary.pooled_counts.pred_voxels()) / n_cases;
    mean[summary.name] = channel;
  }
  root["mean"] = mean;

  Json foreground = Json::object();
  Json foreground_channels = Json::object();
  std::vector<std::pair<std::string, MetricValue>> foreground_values;
  for (Metric metric : result.metrics.metrics) {
    const ForegroundMean& fm = result.foreground_mean.at(metric);
    foreground_values.emplace_back(metric_key(metric), fm.value);
    foreground_channels[metric_key(metric)] = fm.n_channels;
  }
  add_values_json(foreground, foreground_values);
  root["foreground_mean"] = foreground;

  Json extras = Json::object();
  extras["reference_dir"] = result.reference_dir.string();
  extras["prediction_dir"] = result.prediction_dir.string();
  extras["dataset_json"] = result.dataset_json.string();
  extras["label_format"] = result.label_format;
  Json metric_names = Json::array();
  for (Metric metric : result.metrics.metrics) metric_names.push_back(metric_key(metric));
  extras["metrics"] = metric_names;
  extras["empty_policy"] = to_string(result.options.empty_policy);
  extras["surface_connectivity"] = result.options.surface_connectivity;
  Json tolerances = Json::object();
  for (const ChannelSummary& summary : result.channels) {
    const auto found = result.options.nsd_tolerance_mm_per_channel.find(summary.name);
    tolerances[summary.name] =
        found != result.options.nsd_tolerance_mm_per_channel.end() ? found->second : result.options.nsd_tolerance_mm;
  }
  extras["nsd_tolerance_mm"] = tolerances;
  switch (result.options.hd_empty_penalty.kind) {
    case HdEmptyPenalty::Kind::none: extras["hd_empty_penalty"] = nullptr; break;
    case HdEmptyPenalty::Kind::fixed_mm: extras["hd_empty_penalty"] = result.options.hd_empty_penalty.mm; break;
    case HdEmptyPenalty::Kind::image_diagonal: extras["hd_empty_penalty"] = "diagonal"; break;
  }
  extras["num_cases"] = result.cases.size();
  extras["missing_predictions"] = result.missing_predictions;
  extras["unmatched_predictions"] = result.unmatched_predictions;
  extras["foreground_mean_n_channels"] = foreground_channels;
  extras["num_channels"] = result.channels.size();
  Json aggregates = Json::object();
  Json pooled = Json::object();
  for (const ChannelSummary& summary : result.channels) {
    Json channel = Json::object();
    for (Metric metric : result.metrics.metrics) {
      const MetricAggregate& a = summary.aggregates.at(metric);
      Json entry = Json::object();
      entry["mean"] = value_json(a.mean);
      entry["median"] = value_json(a.median);
      entry["std"] = value_json(a.std);
      entry["min"] = value_json(a.min);
      entry["max"] = value_json(a.max);
      if (!a.mean.defined()) entry["reason"] = to_string(a.mean.reason());
      entry["n_values"] = a.n_values;
      entry["n_defined"] = a.n_defined;
      entry["n_substituted"] = a.n_substituted;
      Json undefined = Json::object();
      for (UndefinedReason reason : kAllUndefinedReasons) undefined[to_string(reason)] = a.n_undefined[static_cast<int>(reason)];
      entry["n_undefined"] = undefined;
      channel[metric_key(metric)] = entry;
    }
    aggregates[summary.name] = channel;
    Json p = Json::object();
    add_counts_json(p, summary.pooled_counts);
    add_values_json(p, {{"Dice", summary.pooled.dice},
                        {"IoU", summary.pooled.iou},
                        {"precision", summary.pooled.precision},
                        {"recall", summary.pooled.recall}});
    pooled[summary.name] = p;
  }
  extras["aggregates"] = aggregates;
  extras["pooled"] = pooled;
  extras["seconds"] = result.seconds;
  root["mlseg"] = extras;
  return root;
}

std::string evaluation_to_csv(const EvaluationResult& result) {
  std::ostringstream out;
  out << "case_id,channel,nnunet_key,reference_file,prediction_file,reason,TP,FP,FN,TN,n_ref,n_pred";
  for (Metric metric : result.metrics.metrics) out << ',' << metric_key(metric);
  out << '\n';
  for (const CaseEvaluation& evaluation : result.cases) {
    for (std::size_t k = 0; k < result.channels.size(); ++k) {
      const ChannelCaseMetrics& m = evaluation.channels.at(k);
      bool any_undefined = false;
      for (const auto& [metric, value] : m.values) any_undefined = any_undefined || !value.defined();
      out << csv_field(evaluation.case_id) << ',' << csv_field(result.channels[k].name) << ','
          << csv_field(result.channels[k].nnunet_key.value_or("")) << ',' << csv_field(evaluation.reference_file.string())
          << ',' << csv_field(evaluation.prediction_file.string()) << ','
          << (any_undefined ? to_string(*empty_reason(m.state)) : "") << ',' << m.counts.tp << ',' << m.counts.fp << ','
          << m.counts.fn << ',' << m.counts.tn << ',' << m.counts.ref_voxels() << ',' << m.counts.pred_voxels();
      for (Metric metric : result.metrics.metrics) {
        const MetricValue& value = m.values.at(metric);
        out << ',' << (value.defined() ? csv_number(value.value()) : "");
      }
      out << '\n';
    }
  }
  return out.str();
}

std::string format_evaluation_report(const EvaluationResult& result) {
  std::ostringstream out;
  out << "evaluate: " << result.cases.size() << " cases, " << result.channels.size() << " channels ("
      << result.label_format << "), empty policy " << to_string(result.options.empty_policy) << ", "
      << format_duration(result.seconds) << "\n";
  if (!result.missing_predictions.empty()) {
    out << "  " << result.missing_predictions.size() << " case(s) without prediction counted as empty predictions\n";
  }
  if (!result.unmatched_predictions.empty()) {
    out << "  warning: " << result.unmatched_predictions.size()
        << " prediction(s) without a reference were not scored (first: " << result.unmatched_predictions.front() << ")\n";
  }
  TextTable table({"channel", "metric", "mean", "median", "std", "min", "max", "n", "n/a"});
  for (const ChannelSummary& summary : result.channels) {
    for (Metric metric : result.metrics.metrics) {
      const MetricAggregate& a = summary.aggregates.at(metric);
      table.add_row({summary.name, metric_label(metric), a.mean.format(), a.median.format(), a.std.format(),
                     a.min.format(), a.max.format(), std::to_string(a.n_values),
                     undefined_summary(a, result.options.empty_policy)});
    }
  }
  out << "\n" << table.render();
  TextTable pooled({"channel", "nnU-Net key", "pooled Dice", "pooled IoU", "TP", "FP", "FN"});
  for (const ChannelSummary& summary : result.channels) {
    pooled.add_row({summary.name, summary.nnunet_key.value_or("-"), summary.pooled.dice.format(),
                    summary.pooled.iou.format(), std::to_string(summary.pooled_counts.tp),
                    std::to_string(summary.pooled_counts.fp), std::to_string(summary.pooled_counts.fn)});
  }
  out << "\n" << pooled.render();
  out << "\nforeground mean (over channels with a value):\n";
  for (Metric metric : result.metrics.metrics) {
    const ForegroundMean& fm = result.foreground_mean.at(metric);
    out << "  " << metric_label(metric) << ": " << fm.value.format() << " (" << fm.n_channels << " of "
        << fm.n_channels_total << " channels)\n";
  }
  return out.str();
}

void write_evaluation_outputs(const EvaluationResult& result, const std::filesystem::path& summary_path) {
  write_json_file(summary_path, evaluation_to_json(result));
  write_text_file_atomically(summary_path.parent_path() / kPerCaseCsvFileName, evaluation_to_csv(result));
}

}  // namespace mlseg
