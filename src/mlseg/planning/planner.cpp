#include "mlseg/planning/planner.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

#include "mlseg/analysis/analyze.h"
#include "mlseg/core/error.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/io/json_file.h"
#include "mlseg/metrics/surface_metrics.h"  // percentile_linear: np.percentile
#include "mlseg/planning/plans_json.h"

namespace mlseg {
namespace fs = std::filesystem;
namespace {

const nlohmann::ordered_json& require(const nlohmann::ordered_json& json, const char* key, const char* file) {
  if (!json.is_object() || !json.contains(key)) {
    throw Error(std::string("missing key \"") + key + "\"", "rerun mlseg analyze to rewrite the analysis files", {file, "", ""});
  }
  return json[key];
}

double median(std::vector<double> values) { return percentile_linear(std::move(values), 50); }

double product(const std::vector<double>& values) {
  double p = 1;
  for (double v : values) p *= v;
  return p;
}

std::vector<double> drop_first(const std::array<double, 3>& v) { return {v[1], v[2]}; }

// The powerset classes after background: observed combinations that are neither rare (they merge
// into their largest listed subset, as preprocess --rare-combos merge) nor ignored, most voxels
// first; plus, for a channel found only in rare combinations, its most frequent one.
std::vector<CombinationCode> powerset_classes(const PlanningInput& input, int num_channels) {
  std::vector<const PlanningCombination*> kept;
  for (const auto& c : input.combinations) {
    bool empty = true;
    for (auto w : c.code_words) empty = empty && w == 0;
    if (!c.rare && !c.ignore && !empty) kept.push_back(&c);
  }
  // A channel that only occurs in rare combinations keeps its most frequent one as a class, so that
  // every channel present in the data can be predicted.
  for (int c = 0; c < num_channels; ++c) {
    const auto has = [c](const PlanningCombination* p) {
      return static_cast<std::size_t>(c / 64) < p->code_words.size() && ((p->code_words[c / 64] >> (c % 64)) & 1);
    };
    if (std::any_of(kept.begin(), kept.end(), has)) continue;
    const PlanningCombination* best = nullptr;
    for (const auto& combination : input.combinations) {
      if (!combination.ignore && has(&combination) && (best == nullptr || combination.voxels > best->voxels)) best = &combination;
    }
    if (best != nullptr) kept.push_back(best);
  }
  std::stable_sort(kept.begin(), kept.end(), [](const auto* a, const auto* b) { return a->voxels > b->voxels; });
  std::vector<CombinationCode> classes;
  const std::size_t words = static_cast<std::size_t>((num_channels + 64) / 64);
  for (const auto* c : kept) {
    CombinationCode code = c->code_words;
    code.resize(words, 0);
    for (std::size_t w = 0; w < words; ++w) {
      const int bits_here = num_channels - 64 * static_cast<int>(w);
      if (bits_here < 64) code[w] &= bits_here <= 0 ? 0 : ((std::uint64_t{1} << bits_here) - 1);
    }
    if (std::find(classes.begin(), classes.end(), code) == classes.end()) classes.push_back(code);
  }
  return classes;
}

// --encoding auto when powerset does not fit: the sigmoid plan, saying why.
Plans plan_sigmoid_instead(const PlanningInput& input, const PlanOptions& options, const std::string& problem) {
  PlanOptions fallback = options;
  fallback.encoding = "sigmoid";
  Plans plans = plan_experiment(input, fallback);
  plans.notes.erase(std::remove(plans.notes.begin(), plans.notes.end(), plans.encoding_note), plans.notes.end());
  plans.encoding_note = "analyze recommends powerset, but " + problem + ": planned sigmoid";
  plans.notes.insert(plans.notes.begin(), plans.encoding_note);
  return plans;
}

}  // namespace

PlanningInput planning_input_from_json(const nlohmann::ordered_json& fingerprint, const nlohmann::ordered_json& labels) {
  const char* fp_file = "fingerprint.json";
  const char* labels_file = "labels.json";
  PlanningInput input;
  try {
    input.dataset_name = require(fingerprint, "dataset", fp_file).get<std::string>();
    for (const auto& s : require(fingerprint, "spacings", fp_file)) input.spacings_zyx.push_back({s[0].get<double>(), s[1].get<double>(), s[2].get<double>()});
    for (const auto& s : require(fingerprint, "shapes_after_crop", fp_file)) {
      input.shapes_after_crop_zyx.push_back({s[0].get<std::int64_t>(), s[1].get<std::int64_t>(), s[2].get<std::int64_t>()});
    }
    input.median_relative_size_after_cropping = require(fingerprint, "median_relative_size_after_cropping", fp_file).get<double>();
    input.image_channel_names = require(fingerprint, "image_channels", fp_file).get<std::vector<std::string>>();
    input.foreground_intensity_properties = require(fingerprint, "foreground_intensity_properties_per_channel", fp_file);
    input.channel_names = require(labels, "channel_names", labels_file).get<std::vector<std::string>>();
    for (const auto& ch : require(labels, "channels", labels_file)) {
      ChannelPresenceStats presence;
      presence.name = ch.at("name").get<std::string>();
      presence.foreground_selection_probability = ch.at("foreground_selection_probability").get<double>();
      presence.case_presence_fraction = ch.at("case_presence_fraction").get<double>();
      presence.mean_volume_fraction = ch.at("mean_volume_fraction").get<double>();
      input.channels.push_back(presence);
    }
    const auto& recommendations = require(labels, "recommendations", labels_file);
    input.recommended_encoding = recommendations.at("encoding").get<std::string>();
    const auto& per_channel = recommendations.at("per_channel");
    for (const auto& name : input.channel_names) {
      const bool known = per_channel.contains(name);
      input.bce_pos_weight.push_back(known ? per_channel[name].at("bce_pos_weight").get<double>() : 1.0);
      input.sampling_weights.push_back(known ? per_channel[name].at("sampling_weight").get<double>() : 1.0);
    }
    if (labels.contains("combinations")) {
      for (const auto& entry : labels["combinations"]) {
        PlanningCombination combination;
        combination.code_words = entry.at("code_words").get<std::vector<std::uint64_t>>();
        combination.voxels = entry.at("voxels").get<std::int64_t>();
        combination.rare = entry.value("rare", false);
        combination.ignore = entry.value("ignore", false);
        input.combinations.push_back(std::move(combination));
      }
    }
    if (labels.contains("relations")) {
      for (const auto& r : labels["relations"]) {
        if (r.value("kind", "") != "disjoint" && r.value("overlap_voxels", std::int64_t{0}) > 0) input.channels_overlap = true;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("the analysis files do not have the expected form: ") + e.what(),
                "rerun mlseg analyze to rewrite them");
  }
  if (input.spacings_zyx.empty() || input.spacings_zyx.size() != input.shapes_after_crop_zyx.size()) {
    throw Error("fingerprint.json lists no cases (or unequal spacings and shapes)", "rerun mlseg analyze on the dataset",
                {fp_file, "", ""});
  }
  return input;
}

const ConfigurationPlan* Plans::find(const std::string& name) const {
  for (const auto& c : configurations) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Plans plan_experiment(const PlanningInput& input, const PlanOptions& options) {
  Plans plans;
  plans.dataset_name = input.dataset_name;
  plans.planner = options.planner;
  plans.channel_names = input.channel_names;

  // Label encoding: the recommendation, or the user's choice.
  const bool automatic = options.encoding == "auto";
  if (automatic) {
    plans.label_encoding = input.recommended_encoding;
    plans.encoding_note = "analyze's recommendation";
  } else if (options.encoding == "sigmoid" || options.encoding == "softmax" || options.encoding == "powerset") {
    plans.label_encoding = options.encoding;
    plans.encoding_note = "--encoding " + options.encoding;
  } else {
    throw Error("unknown --encoding '" + options.encoding + "'", "use auto, sigmoid, softmax or powerset");
  }
  if (plans.label_encoding == "softmax" && input.channels_overlap) {
    throw Error("softmax encoding chosen but some label channels overlap (labels.json relations)",
                "use --encoding sigmoid (one output per channel), powerset (one class per combination) or auto");
  }
  if (plans.label_encoding != "sigmoid" && plans.label_encoding != "softmax" && plans.label_encoding != "powerset") {
    throw Error("labels.json recommends an unknown encoding '" + plans.label_encoding + "'",
                "rerun mlseg analyze, or pass --encoding sigmoid|softmax|powerset");
  }
  const int num_label_channels = static_cast<int>(input.channel_names.size());
  if (plans.label_encoding == "powerset") {
    plans.powerset_combinations = powerset_classes(input, num_label_channels);
    const std::size_t classes = plans.powerset_combinations.size() + 1;
    if (classes > static_cast<std::size_t>(std::min(options.powerset_max_classes, kMaxPowersetClasses))) {
      const std::string problem = std::to_string(classes) + " powerset classes (" + std::to_string(classes - 1) +
                                  " observed channel combinations + background) exceed the limit of " +
                                  std::to_string(std::min(options.powerset_max_classes, kMaxPowersetClasses));
      if (!automatic) throw Error(problem, "use --encoding sigmoid (one output per channel), or merge rare combinations");
      return plan_sigmoid_instead(input, options, problem);
    }
  }
  const LabelEncoding encoding = LabelEncoding::of_kind(parse_encoding_kind(plans.label_encoding, "plans"), num_label_channels,
                                                        plans.powerset_combinations);
  const int output_channels = encoding.num_outputs();
  {
    std::vector<double> selection;
    for (const auto& ch : input.channels) selection.push_back(ch.foreground_selection_probability);
    plans.remedies = plan_remedies(input.channel_names, selection, input.bce_pos_weight, encoding);
  }

  // Target spacing, transpose, and the median shape after resampling (P:403-420).
  plans.target_spacing_zyx = determine_target_spacing(input.spacings_zyx, input.shapes_after_crop_zyx, options);
  plans.transpose = determine_transpose(plans.target_spacing_zyx);
  const auto& forward = plans.transpose.forward;
  std::array<double, 3> fullres_spacing{}, median_shape{};
  std::array<std::vector<double>, 3> new_shapes, spacings, shapes;
  for (std::size_t k = 0; k < input.spacings_zyx.size(); ++k) {
    const auto shape = fractional_resampled_shape(input.shapes_after_crop_zyx[k], input.spacings_zyx[k], plans.target_spacing_zyx);
    for (int a = 0; a < 3; ++a) {
      new_shapes[a].push_back(shape[a]);
      spacings[a].push_back(input.spacings_zyx[k][a]);
      shapes[a].push_back(static_cast<double>(input.shapes_after_crop_zyx[k][a]));
    }
  }
  for (int i = 0; i < 3; ++i) {
    fullres_spacing[i] = plans.target_spacing_zyx[forward[i]];
    median_shape[i] = median(new_shapes[forward[i]]);
    plans.original_median_spacing[i] = median(spacings[forward[i]]);
    plans.original_median_shape[i] = median(shapes[forward[i]]);
  }
  const double num_cases = static_cast<double>(input.spacings_zyx.size());
  const std::vector<double> fullres_spacing_v(fullres_spacing.begin(), fullres_spacing.end());
  const std::vector<double> median_shape_v(median_shape.begin(), median_shape.end());
  const double dataset_voxels = product(median_shape_v) * num_cases;

  // Normalisation, shared by all configurations.
  NormalizationInput norm;
  norm.image_channel_names = input.image_channel_names;
  norm.num_data_channels = static_cast<int>(input.foreground_intensity_properties.size());
  if (norm.num_data_channels == 0) norm.num_data_channels = static_cast<int>(input.image_channel_names.size());
  norm.is_2d = median_shape[0] == 1;
  norm.intensities_in_uint8_range = true;
  for (const auto& [key, props] : input.foreground_intensity_properties.items()) {
    (void)key;
    const auto& lo = props.contains("min") ? props["min"] : nlohmann::ordered_json();
    const auto& hi = props.contains("max") ? props["max"] : nlohmann::ordered_json();
    if (!lo.is_number() || !hi.is_number() || lo.get<double>() < 0 || hi.get<double>() > 255) norm.intensities_in_uint8_range = false;
  }
  norm.median_relative_size_after_cropping = input.median_relative_size_after_cropping;
  plans.normalization = choose_normalization(norm, options);
  for (std::size_t m = 0; m < plans.normalization.schemes.size(); ++m) {
    if (plans.normalization.schemes[m] != "CT") continue;
    const auto key = std::to_string(m);
    const auto& props = input.foreground_intensity_properties;
    if (!props.contains(key) || !props[key].contains("mean") || !props[key]["mean"].is_number()) {
      plans.notes.push_back("image channel " + key + " is CT but the fingerprint has no foreground intensities for it: "
                            "CT normalisation needs them (label some foreground, then rerun mlseg analyze)");
    }
  }

  auto add_val_iterations = [&](ConfigurationPlan& config) {
    double patch = 1;
    for (auto p : config.patch.topology.patch_size) patch *= static_cast<double>(p);
    const double ratio = patch / std::max(1.0, product(config.patch.median_shape));
    config.val_iterations_auto = validation_iterations_for_coverage(input.channels, ratio, options);
  };

  ConfigurationPlan fullres, lowres;
  bool has_fullres = false, has_lowres = false;
  if (median_shape[0] != 1) {
    fullres.name = "3d_fullres";
    fullres.patch = plan_patch_and_batch(fullres_spacing_v, median_shape_v, dataset_voxels, output_channels, options);
    has_fullres = true;
    // 3d_lowres: coarsen the spacing until the patch covers the lowres threshold (P:445-482).
    double median_voxels = product(median_shape_v);
    double patch_voxels = 1;
    for (auto p : fullres.patch.topology.patch_size) patch_voxels *= static_cast<double>(p);
    std::vector<double> lowres_spacing = fullres_spacing_v;
    for (int step = 0; patch_voxels / median_voxels < options.lowres_creation_threshold && step < 100000; ++step) {
      const double max_spacing = *std::max_element(lowres_spacing.begin(), lowres_spacing.end());
      bool any_anisotropic = false;
      for (double s : lowres_spacing) any_anisotropic |= max_spacing / s > 2;
      if (any_anisotropic) {
        for (double& s : lowres_spacing) {
          if (max_spacing / s > 2) s *= options.lowres_spacing_step;
        }
      } else {
        for (double& s : lowres_spacing) s *= options.lowres_spacing_step;
      }
      std::vector<double> lowres_median(3), lowres_median_rounded(3);
      for (int i = 0; i < 3; ++i) {
        lowres_median[i] = fullres_spacing_v[i] / lowres_spacing[i] * median_shape_v[i];
        lowres_median_rounded[i] = std::nearbyint(lowres_median[i]);
      }
      median_voxels = product(lowres_median);
      lowres.name = "3d_lowres";
      lowres.patch = plan_patch_and_batch(lowres_spacing, lowres_median_rounded, median_voxels * num_cases, output_channels, options);
      has_lowres = true;
      patch_voxels = 1;
      for (auto p : lowres.patch.topology.patch_size) patch_voxels *= static_cast<double>(p);
    }
    if (has_lowres && product(median_shape_v) / median_voxels < options.lowres_min_size_ratio) {
      plans.notes.push_back("3d_lowres dropped: its median image is less than 2x smaller than 3d_fullres's");
      has_lowres = false;
    }
    fullres.batch_dice = has_lowres;
    lowres.batch_dice = false;
  }
  ConfigurationPlan plan2d;
  plan2d.name = "2d";
  plan2d.patch = plan_patch_and_batch(drop_first(fullres_spacing), drop_first(median_shape), dataset_voxels, output_channels, options);
  plan2d.batch_dice = true;
  add_val_iterations(plan2d);
  plans.configurations.push_back(plan2d);
  if (has_lowres) {
    add_val_iterations(lowres);
    plans.configurations.push_back(lowres);
  }
  if (has_fullres) {
    add_val_iterations(fullres);
    plans.configurations.push_back(fullres);
  }
  if (plans.label_encoding == "powerset") {
    // The output tensors of a step grow with the class count: refuse what the memory budget cannot hold.
    for (const auto& c : plans.configurations) {
      if (c.name == "2d" && plans.find("3d_fullres") != nullptr) continue;  // a 3D dataset trains 3d_fullres by default
      double voxels = static_cast<double>(c.patch.batch_size);
      for (auto p : c.patch.topology.patch_size) voxels *= static_cast<double>(p);
      const double needed_gb = voxels * output_channels * options.powerset_bytes_per_output_voxel / 1e9;
      const double allowed_gb = options.powerset_memory_fraction * options.gpu_memory_gb;
      if (needed_gb <= allowed_gb) continue;
      const std::string problem = std::to_string(output_channels) + " powerset classes need about " +
                                  std::to_string(static_cast<int>(std::ceil(needed_gb))) + " GB of output tensors per batch in " +
                                  c.name + ", more than " + std::to_string(allowed_gb).substr(0, 4) + " GB (" +
                                  std::to_string(static_cast<int>(options.powerset_memory_fraction * 100)) + "% of --gpu-memory-gb)";
      if (!automatic) throw Error(problem, "use --encoding sigmoid (one output per channel), or raise --gpu-memory-gb");
      return plan_sigmoid_instead(input, options, problem);
    }
  }
  if (!plans.encoding_note.empty() && plans.encoding_note != "analyze's recommendation") plans.notes.push_back(plans.encoding_note);
  plans.notes.push_back(std::string("remedies: ") + (plans.remedies.imbalance ? "on" : "off") + " (" + plans.remedies.reason + ")");
  return plans;
}

fs::path plans_file_for(const fs::path& dataset_dir, const std::string& work_dir) {
  std::error_code ignored;
  std::string name = fs::weakly_canonical(dataset_dir, ignored).filename().string();
  if (name.empty()) name = dataset_dir.filename().string();
  return dataset_work_dir(resolve_work_dir(work_dir), name) / "plans.json";
}

PlanRun plan_dataset(const fs::path& dataset_dir, const PlanOptions& options) {
  PlanRun run;
  run.plans_file = plans_file_for(dataset_dir, options.work_dir);
  const fs::path analysis = run.plans_file.parent_path() / "analysis";
  nlohmann::ordered_json fingerprint, labels;
  if (!fs::exists(analysis / "fingerprint.json") || !fs::exists(analysis / "labels.json")) {
    if (options.show_progress) {
      std::cerr << "mlseg plan: " << (analysis / "fingerprint.json").string()
                << " or labels.json is missing: running mlseg analyze first (default options)\n";
    }
    AnalyzeOptions analyze;
    analyze.work_dir = options.work_dir;
    analyze.threads = options.threads;
    analyze.show_progress = options.show_progress;
    analyze.write_files = options.write_files;
    const AnalysisResult result = analyze_dataset(dataset_dir, analyze);
    fingerprint = fingerprint_to_json(result);
    labels = labels_to_json(result, analyze);
    run.ran_analyze = true;
  } else {
    fingerprint = read_json_file(analysis / "fingerprint.json");
    labels = read_json_file(analysis / "labels.json");
  }
  PlanningInput input;
  try {
    input = planning_input_from_json(fingerprint, labels);
  } catch (const Error& e) {
    throw e.located({(analysis / "fingerprint.json").string(), "", ""});
  }
  run.plans = plan_experiment(input, options);
  if (run.ran_analyze) run.plans.notes.insert(run.plans.notes.begin(), "the analysis files were missing: ran mlseg analyze first");
  run.json = plans_to_json(run.plans, input, options);
  if (options.write_files) write_json_file(run.plans_file, run.json);
  return run;
}

namespace {
template <typename T>
std::string join(const std::vector<T>& values, const char* separator = "x") {
  std::ostringstream out;
  for (std::size_t i = 0; i < values.size(); ++i) out << (i ? separator : "") << values[i];
  return out.str();
}
}  // namespace

std::string format_plans_report(const PlanRun& run) {
  std::ostringstream out;
  const Plans& plans = run.plans;
  out << "mlseg plan: " << plans.dataset_name << " (label encoding " << plans.label_encoding << ", "
      << (plans.planner == NetworkPlanner::plain ? std::string("PlainConvUNet") : "ResidualEncoderUNet, " + to_string(plans.planner))
      << ")\n";
  out << "  transpose_forward " << plans.transpose.forward[0] << "," << plans.transpose.forward[1] << ","
      << plans.transpose.forward[2] << "; normalisation " << join(plans.normalization.schemes, ", ") << "\n";
  for (const auto& c : plans.configurations) {
    std::vector<double> spacing = c.patch.spacing;
    char buffer[64];
    std::vector<std::string> spacing_text;
    for (double s : spacing) {
      std::snprintf(buffer, sizeof buffer, "%.4g", s);
      spacing_text.push_back(buffer);
    }
    out << "  " << c.name << ": patch " << join(c.patch.topology.patch_size) << ", batch " << c.patch.batch_size
        << ", spacing " << join(spacing_text) << " mm, " << c.patch.topology.num_stages() << " stages, val_iterations_auto "
        << c.val_iterations_auto << "\n";
  }
  for (const auto& note : plans.notes) out << "  note: " << note << "\n";
  if (!run.plans_file.empty()) out << "wrote " << run.plans_file.string() << "\n";
  return out.str();
}

}  // namespace mlseg
