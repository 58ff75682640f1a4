#include "mlseg/planning/plans_json.h"

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/labels/label_encoding.h"
#include "mlseg/planning/normalization_choice.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

template <typename T, std::size_t N>
Json array_of(const std::array<T, N>& values) {
  Json out = Json::array();
  for (const auto& v : values) out.push_back(v);
  return out;
}

Json nested(const std::vector<std::vector<int>>& values) {
  Json out = Json::array();
  for (const auto& v : values) out.push_back(v);
  return out;
}

Json resampling_kwargs(bool is_seg, int order) {
  // force_separate_z null: resample the out-of-plane axis separately (order_z) when the spacing is
  // anisotropic (max/min > 3), as nnU-Net.
  return {{"is_seg", is_seg}, {"order", order}, {"order_z", 0}, {"force_separate_z", nullptr}};
}

Json configuration_json(const ConfigurationPlan& c, const Plans& plans, const PlanOptions& options) {
  const PatchPlan& p = c.patch;
  const int stages = p.topology.num_stages();
  const bool is_2d = p.spacing.size() == 2;
  Json median = Json::array();
  for (double m : p.median_shape) median.push_back(m);
  Json config;
  config["data_identifier"] = plans_name_for(options.planner) + "_" + c.name;
  config["preprocessor_name"] = "DefaultPreprocessor";
  config["batch_size"] = p.batch_size;
  config["patch_size"] = p.topology.patch_size;
  config["median_image_size_in_voxels"] = median;
  config["spacing"] = p.spacing;
  Json schemes = Json::array();  // nnU-Net's class names; reading accepts the short names too
  for (const auto& scheme : plans.normalization.schemes) schemes.push_back(nnunet_normalization_class_name(scheme));
  config["normalization_schemes"] = schemes;
  Json mask = Json::array();
  for (bool b : plans.normalization.use_mask_for_norm) mask.push_back(b);
  config["use_mask_for_norm"] = mask;
  config["resampling_fn_data"] = "resample_data_or_seg_to_shape";
  config["resampling_fn_seg"] = "resample_data_or_seg_to_shape";
  config["resampling_fn_data_kwargs"] = resampling_kwargs(false, 3);
  config["resampling_fn_seg_kwargs"] = resampling_kwargs(true, 1);
  config["resampling_fn_probabilities"] = "resample_data_or_seg_to_shape";
  config["resampling_fn_probabilities_kwargs"] = resampling_kwargs(false, 1);
  Json arch;
  arch["n_stages"] = stages;
  arch["features_per_stage"] = p.features;
  arch["conv_op"] = is_2d ? "torch.nn.modules.conv.Conv2d" : "torch.nn.modules.conv.Conv3d";
  arch["kernel_sizes"] = nested(p.topology.kernel_sizes);
  arch["strides"] = nested(p.topology.strides);
  const bool residual = options.planner != NetworkPlanner::plain;
  if (residual) {
    std::vector<int> blocks(options.residual_blocks_per_stage);
    blocks.resize(static_cast<std::size_t>(stages), blocks.empty() ? 1 : blocks.back());
    arch["n_blocks_per_stage"] = blocks;
    arch["n_conv_per_stage_decoder"] = std::vector<int>(std::max(0, stages - 1), options.residual_decoder_convs);
  } else {
    arch["n_conv_per_stage"] = std::vector<int>(stages, options.convs_per_stage);
    arch["n_conv_per_stage_decoder"] = std::vector<int>(std::max(0, stages - 1), options.convs_per_stage);
  }
  arch["conv_bias"] = true;
  arch["norm_op"] = is_2d ? "torch.nn.modules.instancenorm.InstanceNorm2d" : "torch.nn.modules.instancenorm.InstanceNorm3d";
  arch["norm_op_kwargs"] = {{"eps", 1e-5}, {"affine", true}};
  arch["dropout_op"] = nullptr;
  arch["dropout_op_kwargs"] = nullptr;
  arch["nonlin"] = "torch.nn.LeakyReLU";
  arch["nonlin_kwargs"] = {{"inplace", true}};
  config["architecture"] = {{"network_class_name", residual ? "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
                                                            : "dynamic_network_architectures.architectures.unet.PlainConvUNet"},
                            {"arch_kwargs", arch},
                            {"_kw_requires_import", {"conv_op", "norm_op", "dropout_op", "nonlin"}}};
  config["batch_dice"] = c.batch_dice;
  // mlseg: how the plan was reached (for the reader of the file; not read back).
  config["axes"] = is_2d ? "yx (after transpose_forward)" : "zyx (after transpose_forward)";
  config["estimated_feature_map_voxels_per_sample"] = p.feature_map_size;
  config["feature_map_budget"] = p.budget;
  config["val_iterations_auto"] = c.val_iterations_auto;
  return config;
}

void problem(std::vector<PlansProblem>& problems, std::string key, std::string what, std::string fix) {
  problems.push_back({std::move(key), std::move(what), std::move(fix)});
}

bool is_int_list(const Json& value) {
  if (!value.is_array() || value.empty()) return false;
  return std::all_of(value.begin(), value.end(), [](const Json& v) { return v.is_number_integer(); });
}

}  // namespace

nlohmann::ordered_json plans_to_json(const Plans& plans, const PlanningInput& input, const PlanOptions& options) {
  Json json;
  json["dataset_name"] = plans.dataset_name;
  json["plans_name"] = plans_name_for(options.planner);
  json["axes"] = "zyx; transpose_forward maps the image's zyx axes to the planned axes";
  json["original_median_spacing_after_transp"] = array_of(plans.original_median_spacing);
  Json shape = Json::array();
  for (double s : plans.original_median_shape) shape.push_back(static_cast<std::int64_t>(std::nearbyint(s)));
  json["original_median_shape_after_transp"] = shape;
  json["image_reader_writer"] = "mlseg";
  json["transpose_forward"] = array_of(plans.transpose.forward);
  json["transpose_backward"] = array_of(plans.transpose.backward);
  Json configurations = Json::object();
  for (const auto& c : plans.configurations) configurations[c.name] = configuration_json(c, plans, options);
  if (configurations.contains("3d_lowres")) {
    // nnU-Net's cascade: full resolution with the low-resolution prediction as extra input; it
    // uses 3d_fullres's data (P:497-503).
    configurations["3d_lowres"]["next_stage"] = "3d_cascade_fullres";
    configurations["3d_cascade_fullres"] = Json{{"inherits_from", "3d_fullres"}, {"previous_stage", "3d_lowres"}};
  }
  json["configurations"] = configurations;
  json["experiment_planner_used"] = "mlseg ExperimentPlanner (nnU-Net v2 default rules)";
  json["label_manager"] = "LabelManager";
  json["foreground_intensity_properties_per_channel"] = input.foreground_intensity_properties;
  // mlseg keys.
  const int num_channels = static_cast<int>(plans.channel_names.size());
  LabelEncoding::of_kind(parse_encoding_kind(plans.label_encoding, "plans"), num_channels, plans.powerset_combinations)
      .write_json(json, plans.channel_names);
  json["label_encoding_source"] = plans.encoding_note;
  json["image_channel_names"] = input.image_channel_names;
  json["normalization_reasons"] = plans.normalization.reasons;
  json["channel_names"] = plans.channel_names;
  // The remedies `mlseg train` applies (see planning/remedies.h); every value may be edited.
  json["remedies"] = {{"sampling", plans.remedies.imbalance ? "inverse_frequency" : "uniform"},
                      {"bce_pos_weight", plans.remedies.imbalance && plans.label_encoding == "sigmoid"},
                      {"reason", plans.remedies.reason},
                      {"rule", "on when nnU-Net's chance of centring a forced patch on a channel differs between channels by "
                               "at least 2x: forced patches pick their channel by sampling_weights; sigmoid: BCE pos_weight "
                               "= sqrt(negatives / positives) clipped to [1, 3]; --nnunet-defaults turns them off"}};
  Json pos_weight = Json::object(), sampling = Json::object(), loss_weights = Json::object();
  for (std::size_t c = 0; c < plans.channel_names.size(); ++c) {
    const std::string& name = plans.channel_names[c];
    pos_weight[name] = c < plans.remedies.bce_pos_weight.size() ? plans.remedies.bce_pos_weight[c] : 1.0;
    sampling[name] = c < input.sampling_weights.size() ? input.sampling_weights[c] : 1.0;
    loss_weights[name] = 1.0;
  }
  json["bce_pos_weight"] = pos_weight;
  json["sampling_weights"] = sampling;
  json["loss_channel_weights"] = loss_weights;
  Json val = Json::object();
  for (const auto& c : plans.configurations) val[c.name] = c.val_iterations_auto;
  json["val_iterations_auto"] = val;
  json["val_iterations_formula"] =
      "n = max(50, max over present channels of ceil(ln(0.01) / ln(1 - p_c))), p_c = 0.33*s_c + 0.67*q_c*min(1, "
      "(f_c^(1/3) + r^(1/3))^3); s_c foreground_selection_probability, q_c case_presence_fraction, f_c "
      "mean_volume_fraction (labels.json), r patch voxels / median image voxels";
  json["preset"] = options.preset == PlanPreset::cpu ? "cpu" : "gpu";
  json["gpu_memory_gb"] = options.gpu_memory_gb;
  return json;
}

std::vector<PlansProblem> check_plans(const nlohmann::ordered_json& plans) {
  std::vector<PlansProblem> problems;
  if (!plans.is_object()) {
    problem(problems, "(top level)", "plans.json is not a JSON object", "rerun mlseg plan to rewrite it");
    return problems;
  }
  const std::string encoding = plans.value("label_encoding", "");
  if (encoding != "sigmoid" && encoding != "softmax" && encoding != "powerset") {
    problem(problems, "label_encoding", "is '" + encoding + "', not a known encoding",
            "set it to \"sigmoid\", \"softmax\" or \"powerset\"");
  } else {
    try {
      LabelEncoding::from_json(plans, plans.value("channel_names", std::vector<std::string>{}), "plans.json");
    } catch (const Error& e) {
      problem(problems, encoding == "powerset" ? "powerset_combinations" : "label_encoding", e.problem(), e.fix());
    }
  }
  for (const RemedyProblem& p : check_remedy_keys(plans)) problem(problems, p.key, p.problem, p.fix);
  bool transpose_valid = true;
  for (const char* key : {"transpose_forward", "transpose_backward"}) {
    std::vector<int> t;
    if (plans.contains(key) && is_int_list(plans[key])) t = plans[key].get<std::vector<int>>();
    std::vector<int> sorted = t;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != std::vector<int>{0, 1, 2}) {
      problem(problems, key, "must be a permutation of [0, 1, 2]", "set it to e.g. [0, 1, 2] (no transpose)");
      transpose_valid = false;
    }
  }
  if (transpose_valid) {
    const auto f = plans["transpose_forward"].get<std::vector<int>>();
    const auto b = plans["transpose_backward"].get<std::vector<int>>();
    bool inverse = true;
    for (int i = 0; i < 3; ++i) inverse &= b[f[i]] == i;
    if (!inverse) problem(problems, "transpose_backward", "is not the inverse of transpose_forward", "set transpose_backward[transpose_forward[i]] = i");
  }
  if (!plans.contains("configurations") || !plans["configurations"].is_object() || plans["configurations"].empty()) {
    problem(problems, "configurations", "missing or empty", "rerun mlseg plan to rewrite plans.json");
    return problems;
  }
  for (const auto& [name, c] : plans["configurations"].items()) {
    const std::string at = "configurations." + name + ".";
    if (c.contains("inherits_from")) continue;  // nnU-Net cascade entries
    const bool is_2d = name == "2d";
    std::size_t dim = is_2d ? 2 : 3;
    if (!c.contains("patch_size") || !is_int_list(c["patch_size"])) {
      problem(problems, at + "patch_size", "missing or not a list of integers", "set it to one integer per axis, e.g. [40, 56, 40]");
      continue;
    }
    const auto patch = c["patch_size"].get<std::vector<std::int64_t>>();
    dim = patch.size();
    if ((is_2d && dim != 2) || (!is_2d && name.rfind("3d", 0) == 0 && dim != 3)) {
      problem(problems, at + "patch_size", "has " + std::to_string(dim) + " axes", std::string("give ") + (is_2d ? "2 (yx)" : "3 (zyx)"));
    }
    for (auto p : patch) {
      if (p < 1) problem(problems, at + "patch_size", "has a size below 1", "use positive sizes");
    }
    if (!c.contains("spacing") || !c["spacing"].is_array() || c["spacing"].size() != dim) {
      problem(problems, at + "spacing", "missing or not one value per patch axis", "give " + std::to_string(dim) + " spacings in mm");
    } else {
      for (const auto& s : c["spacing"]) {
        if (!s.is_number() || !(s.get<double>() > 0)) problem(problems, at + "spacing", "has a spacing that is not positive", "use spacings > 0 (mm)");
      }
    }
    if (!c.contains("batch_size") || !c["batch_size"].is_number_integer() || c["batch_size"].get<std::int64_t>() < 1) {
      problem(problems, at + "batch_size", "missing or below 1", "set an integer >= 1 (nnU-Net's minimum is 2)");
    }
    std::size_t schemes = 0;
    if (!c.contains("normalization_schemes") || !c["normalization_schemes"].is_array()) {
      problem(problems, at + "normalization_schemes", "missing or not a list", "give one scheme per image channel");
    } else {
      schemes = c["normalization_schemes"].size();
      for (const auto& s : c["normalization_schemes"]) {
        if (!s.is_string() || canonical_normalization_scheme(s.get<std::string>()).empty()) {
          problem(problems, at + "normalization_schemes", "'" + (s.is_string() ? s.get<std::string>() : s.dump()) + "' is not a known scheme",
                  "use nnU-Net's ZScoreNormalization, CTNormalization, NoNormalization, RescaleTo01Normalization or RGBTo01Normalization (the short names zscore, CT, noNorm, rescale_to_0_1, rgb_to_0_1 are read too)");
        }
      }
    }
    if (c.contains("resampling_fn_data_kwargs")) {
      const Json& kwargs = c["resampling_fn_data_kwargs"];
      const Json order = kwargs.is_object() ? kwargs.value("order", Json(3)) : Json();
      if (!order.is_number_integer() || (order.get<int>() != 1 && order.get<int>() != 3)) {
        problem(problems, at + "resampling_fn_data_kwargs.order", "is " + order.dump() + ", not 1 (linear) or 3 (cubic)",
                "set it to 3, nnU-Net's default, or 1");
      }
    }
    if (c.contains("use_mask_for_norm") && (!c["use_mask_for_norm"].is_array() || c["use_mask_for_norm"].size() != schemes)) {
      problem(problems, at + "use_mask_for_norm", "is not one true/false per normalisation scheme",
              "give " + std::to_string(schemes) + " booleans");
    }
    const Json* arch = nullptr;
    if (c.contains("architecture") && c["architecture"].contains("arch_kwargs")) arch = &c["architecture"]["arch_kwargs"];
    if (arch == nullptr || !arch->is_object()) {
      problem(problems, at + "architecture.arch_kwargs", "missing", "rerun mlseg plan to rewrite plans.json");
      continue;
    }
    const std::string arch_at = at + "architecture.arch_kwargs.";
    const int stages = arch->value("n_stages", 0);
    if (stages < 1) {
      problem(problems, arch_at + "n_stages", "missing or below 1", "set it to the number of entries in strides");
      continue;
    }
    auto check_list_of_lists = [&](const char* key) -> std::vector<std::vector<int>> {
      std::vector<std::vector<int>> out;
      if (!arch->contains(key) || !(*arch)[key].is_array() || (*arch)[key].size() != static_cast<std::size_t>(stages)) {
        problem(problems, arch_at + key, "does not have n_stages (" + std::to_string(stages) + ") entries",
                "give one entry per stage, or change n_stages");
        return out;
      }
      for (const auto& entry : (*arch)[key]) {
        if (!is_int_list(entry) || entry.size() != dim) {
          problem(problems, arch_at + key, "has an entry that is not " + std::to_string(dim) + " integers",
                  "give one integer per patch axis in each entry");
          return {};
        }
        out.push_back(entry.get<std::vector<int>>());
      }
      return out;
    };
    const auto strides = check_list_of_lists("strides");
    const auto kernels = check_list_of_lists("kernel_sizes");
    for (const auto& k : kernels) {
      for (int v : k) {
        if (v < 1 || v % 2 == 0) problem(problems, arch_at + "kernel_sizes", "has a kernel size " + std::to_string(v), "use odd sizes (1 or 3)");
      }
    }
    if (!arch->contains("features_per_stage") || !is_int_list((*arch)["features_per_stage"]) ||
        (*arch)["features_per_stage"].size() != static_cast<std::size_t>(stages)) {
      problem(problems, arch_at + "features_per_stage", "does not have n_stages integers", "give one feature count per stage");
    }
    for (const char* key : {"n_conv_per_stage", "n_conv_per_stage_decoder"}) {
      const std::size_t expected = std::string(key) == "n_conv_per_stage" ? stages : stages - 1;
      if (arch->contains(key) && (!(*arch)[key].is_array() || (*arch)[key].size() != expected)) {
        problem(problems, arch_at + key, "does not have " + std::to_string(expected) + " entries", "give one per stage (decoder: n_stages - 1)");
      }
    }
    if (!strides.empty() && patch.size() == dim) {
      std::vector<std::int64_t> divisor(dim, 1);
      for (const auto& s : strides) {
        for (std::size_t i = 0; i < dim; ++i) divisor[i] *= std::max(1, s[i]);
      }
      for (std::size_t i = 0; i < dim; ++i) {
        if (patch[i] % divisor[i] != 0) {
          const std::int64_t up = (patch[i] / divisor[i] + 1) * divisor[i];
          const std::int64_t down = patch[i] / divisor[i] * divisor[i];
          problem(problems, at + "patch_size",
                  "axis " + std::to_string(i) + " is " + std::to_string(patch[i]) + ", not divisible by " +
                      std::to_string(divisor[i]) + " (the product of its strides, 2^pools)",
                  "use " + (down > 0 ? std::to_string(down) + " or " : std::string()) + std::to_string(up) +
                      ", or change the strides");
        }
      }
    }
  }
  return problems;
}

}  // namespace mlseg
