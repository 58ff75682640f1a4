#include "mlseg/evaluation/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <sstream>

#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/io/case_codes.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/label_folder.h"

namespace mlseg {
namespace fs = std::filesystem;

HdEmptyPenalty parse_hd_empty_penalty(const std::string& text) {
  HdEmptyPenalty penalty;
  if (text.empty() || text == "none") return penalty;
  if (text == "diagonal") {
    penalty.kind = HdEmptyPenalty::Kind::image_diagonal;
    return penalty;
  }
  try {
    std::size_t used = 0;
    const double mm = std::stod(text, &used);
    if (used == text.size() && std::isfinite(mm) && mm >= 0) {
      penalty.kind = HdEmptyPenalty::Kind::fixed_mm;
      penalty.mm = mm;
      return penalty;
    }
  } catch (const std::exception&) {
  }
  throw Error("--hd-empty-penalty '" + text + "' is neither a distance in mm, 'diagonal' nor 'none'",
              "pass e.g. --hd-empty-penalty 373.13 or --hd-empty-penalty diagonal");
}

std::optional<std::string> nnunet_key(const LabelSpec& spec, int channel, bool listed_as_list) {
  if (spec.format != LabelFormat::label_map) return std::nullopt;
  const auto& values = spec.channels.at(static_cast<std::size_t>(channel)).raw_values;
  if (values.size() == 1 && !listed_as_list) return std::to_string(values[0]);
  std::string key = "(";
  for (std::size_t i = 0; i < values.size(); ++i) key += (i ? ", " : "") + std::to_string(values[i]);
  return key + (values.size() == 1 ? ",)" : ")");
}

CaseMetricOptions case_metric_options(const EvaluateOptions& options, const LabelSpec& spec) {
  CaseMetricOptions result;
  result.metrics = parse_metric_selection(options.metrics);
  result.surface.connectivity = options.surface_connectivity;
  if (options.surface_connectivity != 6 && options.surface_connectivity != 26) {
    throw Error("surface connectivity " + std::to_string(options.surface_connectivity) + " is not supported",
                "use --surface-connectivity 6 (faces, MONAI's default) or 26");
  }
  if (!(options.nsd_tolerance_mm >= 0) || !std::isfinite(options.nsd_tolerance_mm)) {
    throw Error("NSD tolerance must be a non-negative number of mm", "pass e.g. --nsd-tolerance-mm 1");
  }
  result.surface.nsd_tolerance_mm = options.nsd_tolerance_mm;
  result.surface.nsd_tolerance_mm_per_channel.assign(static_cast<std::size_t>(spec.num_channels()), options.nsd_tolerance_mm);
  for (const auto& [name, tolerance] : options.nsd_tolerance_mm_per_channel) {
    const int c = spec.find_channel(name);
    if (c < 0) {
      throw Error("--nsd-tolerance-mm names channel '" + name + "', which the dataset does not have",
                  "use one of the channel names of dataset.json's \"labels\"", {"", "", name});
    }
    if (!(tolerance >= 0) || !std::isfinite(tolerance)) {
      throw Error("NSD tolerance of channel '" + name + "' must be a non-negative number of mm",
                  "pass e.g. --nsd-tolerance-mm " + name + "=2", {"", "", name});
    }
    result.surface.nsd_tolerance_mm_per_channel[static_cast<std::size_t>(c)] = tolerance;
  }
  if (options.hd_empty_penalty.kind == HdEmptyPenalty::Kind::fixed_mm) {
    result.surface.hd_empty_penalty_mm = options.hd_empty_penalty.mm;
  }
  return result;
}

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

fs::path find_dataset_json(const fs::path& reference_dir, const fs::path& prediction_dir, const EvaluateOptions& options) {
  if (!options.dataset_json.empty()) {
    if (!fs::is_regular_file(options.dataset_json)) {
      throw Error("--dataset-json " + options.dataset_json.string() + " does not exist",
                  "pass the dataset.json that defines the labels", {options.dataset_json.string(), "", ""});
    }
    return options.dataset_json;
  }
  for (const fs::path& candidate : {reference_dir / "dataset.json", reference_dir.parent_path() / "dataset.json",
                                    prediction_dir / "dataset.json"}) {
    if (fs::is_regular_file(candidate)) return candidate;
  }
  throw Error("no dataset.json found in " + reference_dir.string() + ", its parent, or " + prediction_dir.string(),
              "pass --dataset-json FILE (the dataset.json that defines the labels and file_ending)");
}

void check_same_grid(const CaseCodes& ref, const CaseCodes& pred, const std::string& case_id, const fs::path& pred_file,
                     const fs::path& ref_file, const GeometryTolerance& tolerance) {
  const ErrorLocation where{pred_file.string(), case_id, ""};
  const std::string fix = "resample the prediction onto the reference grid (or export it with the reference's header)";
  if (pred.code.shape_zyx != ref.code.shape_zyx) {
    throw Error("prediction shape " + format_shape(pred.code.shape_zyx) + " (z x y x x) differs from the reference's " +
                    format_shape(ref.code.shape_zyx) + " (" + ref_file.string() + ")",
                fix, where);
  }
  if (!spacing_matches(pred.geometry, ref.geometry, tolerance)) {
    throw Error("prediction spacing " + format_zyx(pred.geometry.spacing_zyx_mm) + " mm differs from the reference's " +
                    format_zyx(ref.geometry.spacing_zyx_mm) + " mm",
                fix, where);
  }
  if (!origin_matches(pred.geometry, ref.geometry, tolerance)) {
    throw Error("prediction origin " + format_zyx(pred.geometry.origin_zyx_mm) + " mm differs from the reference's " +
                    format_zyx(ref.geometry.origin_zyx_mm) + " mm",
                fix, where);
  }
  if (!direction_matches(pred.geometry, ref.geometry, tolerance)) {
    throw Error("prediction direction matrix differs from the reference's", fix, where);
  }
}

double image_diagonal_mm(const std::array<std::int64_t, 3>& shape, const std::array<double, 3>& spacing) {
  double sum = 0.0;
  for (int a = 0; a < 3; ++a) sum += std::pow(static_cast<double>(shape[a]) * spacing[a], 2);
  return std::sqrt(sum);
}

}  // namespace

EvaluationResult evaluate_folders(const fs::path& reference_dir_in, const fs::path& prediction_dir,
                                  const EvaluateOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  EvaluationResult result;
  result.options = options;
  result.prediction_dir = prediction_dir;
  result.dataset_json = find_dataset_json(reference_dir_in, prediction_dir, options);
  const nlohmann::ordered_json json = read_json_file(result.dataset_json);
  // A dataset root as REF_DIR means its labelsTr.
  fs::path reference_dir = reference_dir_in;
  if (fs::is_regular_file(reference_dir / "dataset.json") && fs::is_directory(reference_dir / "labelsTr")) {
    reference_dir /= "labelsTr";
  }
  result.reference_dir = reference_dir;

  Dataset dataset;
  dataset.root = reference_dir;
  dataset.json = json;
  const std::string source = result.dataset_json.string();
  dataset.label_file_ending = json.value("label_file_ending", json.value("file_ending", std::string()));
  if (dataset.label_file_ending.empty()) {
    throw Error("dataset.json has neither \"label_file_ending\" nor \"file_ending\"",
                "add e.g. \"file_ending\": \".nii.gz\"", {source, "", ""});
  }
  const bool masks = json.value("label_format", std::string()) == "channel_masks";
  const std::vector<LabelFolderCase> references =
      list_label_folder_cases(reference_dir, dataset.label_file_ending, masks, "reference");
  std::vector<std::string> mask_names;
  if (masks && !json.contains("labels") && !references.empty()) {
    for (const auto& entry : fs::directory_iterator(references.front().path)) {
      const std::string name = entry.path().filename().string();
      if (ends_with(name, dataset.label_file_ending)) mask_names.push_back(name.substr(0, name.size() - dataset.label_file_ending.size()));
    }
    std::sort(mask_names.begin(), mask_names.end());
  }
  dataset.labels = parse_label_spec(json, source, mask_names);
  const LabelSpec& spec = dataset.labels;
  // The predictions' own format (--pred-dataset-json), else the references'.
  Dataset prediction_dataset = dataset;
  bool prediction_masks = masks;
  if (!options.prediction_dataset_json.empty()) {
    const std::string prediction_source = options.prediction_dataset_json.string();
    const nlohmann::ordered_json prediction_json = read_json_file(options.prediction_dataset_json);
    prediction_dataset.root = prediction_dir;
    prediction_dataset.json = prediction_json;
    prediction_dataset.label_file_ending =
        prediction_json.value("label_file_ending", prediction_json.value("file_ending", std::string()));
    prediction_masks = prediction_json.value("label_format", std::string()) == "channel_masks";
    std::vector<std::string> reference_names;
    for (const auto& channel : spec.channels) reference_names.push_back(channel.name);
    prediction_dataset.labels = parse_label_spec(prediction_json, prediction_source, reference_names);
    std::vector<std::string> prediction_names;
    for (const auto& channel : prediction_dataset.labels.channels) prediction_names.push_back(channel.name);
    if (prediction_names != reference_names || prediction_dataset.label_file_ending.empty()) {
      throw Error("the prediction dataset.json does not list the reference's channels in the same order (or has no file ending)",
                  "pass the dataset.json `mlseg predict` wrote into the prediction folder", {prediction_source, "", ""});
    }
  }
  const std::vector<LabelFolderCase> predictions =
      list_label_folder_cases(prediction_dir, prediction_dataset.label_file_ending, prediction_masks, "prediction");
  result.label_format = to_string(spec.format);
  if (references.empty()) {
    throw Error("no reference label files ending in " + dataset.label_file_ending + " in " + reference_dir.string(),
                "point --ref at the folder of reference labels (e.g. DATASET/labelsTr)", {reference_dir.string(), "", ""});
  }

  // Channels to score.
  std::vector<int> channels;
  if (options.channels.empty()) {
    for (int c = 0; c < spec.num_channels(); ++c) channels.push_back(c);
  } else {
    for (const auto& name : options.channels) {
      const int c = spec.find_channel(name);
      if (c < 0) {
        std::string names;
        for (const auto& channel : spec.channels) names += (names.empty() ? "" : ", ") + channel.name;
        throw Error("--channels names '" + name + "', which " + source + " does not define",
                    "choose from: " + names, {source, "", name});
      }
      if (std::find(channels.begin(), channels.end(), c) == channels.end()) channels.push_back(c);
    }
    std::sort(channels.begin(), channels.end());
  }
  const CaseMetricOptions base_options = case_metric_options(options, spec);
  result.metrics = base_options.metrics;
  const nlohmann::ordered_json& labels_json = json.contains("labels") ? json["labels"] : nlohmann::ordered_json::object();
  for (int c : channels) {
    ChannelSummary summary;
    summary.channel = c;
    summary.name = spec.channels[c].name;
    const bool as_list = labels_json.contains(summary.name) && labels_json[summary.name].is_array();
    summary.nnunet_key = nnunet_key(spec, c, as_list);
    result.channels.push_back(std::move(summary));
  }

  // Match cases by id.
  std::map<std::string, fs::path> prediction_of;
  for (const auto& p : predictions) prediction_of[p.case_id] = p.path;
  std::set<std::string> reference_ids;
  for (const auto& r : references) reference_ids.insert(r.case_id);
  for (const auto& p : predictions) {
    if (!reference_ids.count(p.case_id)) result.unmatched_predictions.push_back(p.case_id);
  }
  for (const auto& r : references) {
    if (!prediction_of.count(r.case_id)) result.missing_predictions.push_back(r.case_id);
  }
  if (!result.missing_predictions.empty() && !options.missing_as_empty) {
    std::string listed;
    for (std::size_t i = 0; i < result.missing_predictions.size() && i < 10; ++i) {
      listed += (i ? ", " : "") + result.missing_predictions[i];
    }
    if (result.missing_predictions.size() > 10) listed += ", ...";
    throw Error(std::to_string(result.missing_predictions.size()) + " reference case(s) have no prediction in " +
                    prediction_dir.string() + ": " + listed,
                "predict them, or pass --missing-as-empty to count a missing prediction as an empty one",
                {(prediction_dir / (result.missing_predictions.front() + (masks ? "" : dataset.label_file_ending))).string(),
                 result.missing_predictions.front(), ""});
  }

  // Score cases in parallel; a case's distance transforms use one thread when cases fill the cores.
  const int threads = options.threads > 0 ? options.threads : default_thread_count();
  result.cases.resize(references.size());
  std::vector<std::optional<Error>> failures(references.size());
  Progress progress("evaluate", static_cast<std::int64_t>(references.size()), "cases",
                    ProgressOptions{options.show_progress});
  parallel_for(references.size(), threads, [&](std::size_t i) {
    const LabelFolderCase& reference = references[i];
    CaseEvaluation& evaluation = result.cases[i];
    evaluation.case_id = reference.case_id;
    evaluation.reference_file = reference.path;
    try {
      const CaseCodes ref = read_case_codes(dataset, label_case_files(reference, dataset), options.read);
      CaseCodes pred;
      const auto found = prediction_of.find(reference.case_id);
      if (found != prediction_of.end()) {
        evaluation.prediction_file = found->second;
        pred = read_case_codes(prediction_dataset, label_case_files({reference.case_id, found->second}, prediction_dataset),
                               options.read);
        check_same_grid(ref, pred, reference.case_id, found->second, reference.path, options.geometry_tolerance);
      } else {
        pred.code = empty_code_array(ref.code.shape_zyx, spec.num_channels());
        pred.geometry = ref.geometry;
      }
      CaseMetricOptions case_options = base_options;
      case_options.surface.threads = references.size() >= static_cast<std::size_t>(threads) ? 1 : threads;
      if (options.hd_empty_penalty.kind == HdEmptyPenalty::Kind::image_diagonal) {
        case_options.surface.hd_empty_penalty_mm = image_diagonal_mm(ref.code.shape_zyx, ref.geometry.spacing_zyx_mm);
      }
      evaluation.channels = case_metrics(pred.code, ref.code, ref.geometry.spacing_zyx_mm, channels, case_options);
    } catch (const Error& error) {
      failures[i] = error.located({reference.path.string(), reference.case_id, ""});
    } catch (const std::exception& error) {
      failures[i] = Error("could not score the case: " + error_message(error),
                          "check the reference and prediction files of this case",
                          {reference.path.string(), reference.case_id, ""});
    }
    progress.advance();
  });
  progress.finish();
  std::vector<std::size_t> failed;
  for (std::size_t i = 0; i < failures.size(); ++i) {
    if (failures[i]) failed.push_back(i);
  }
  if (!failed.empty()) {
    const Error& first = *failures[failed.front()];
    std::string problem = first.problem();
    if (failed.size() > 1) {
      problem += " (and " + std::to_string(failed.size() - 1) + " more case(s) failed: ";
      for (std::size_t k = 1; k < failed.size() && k <= 5; ++k) problem += (k > 1 ? ", " : "") + result.cases[failed[k]].case_id;
      problem += failed.size() > 6 ? ", ...)" : ")";
    }
    throw Error(problem, first.fix(), first.where()).with_code(first.code());
  }
  summarize_evaluation(result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void summarize_evaluation(EvaluationResult& result) {
  for (std::size_t k = 0; k < result.channels.size(); ++k) {
    ChannelSummary& summary = result.channels[k];
    summary.aggregates.clear();
    summary.pooled_counts = {};
    for (const CaseEvaluation& evaluation : result.cases) summary.pooled_counts += evaluation.channels.at(k).counts;
    summary.pooled = overlap_metrics(summary.pooled_counts);  // pooled volumes are in voxels
    for (Metric metric : result.metrics.metrics) {
      std::vector<MetricValue> values;
      values.reserve(result.cases.size());
      for (const CaseEvaluation& evaluation : result.cases) values.push_back(evaluation.channels.at(k).values.at(metric));
      summary.aggregates[metric] = aggregate_values(values, is_similarity_metric(metric), result.options.empty_policy);
    }
  }
  result.foreground_mean.clear();
  for (Metric metric : result.metrics.metrics) {
    std::vector<MetricValue> means;
    for (const ChannelSummary& summary : result.channels) means.push_back(summary.aggregates.at(metric).mean);
    result.foreground_mean[metric] = foreground_mean(means);
  }
}

}  // namespace mlseg
