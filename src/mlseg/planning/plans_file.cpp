#include "mlseg/planning/plans_file.h"

#include <map>

#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/planning/plans_json.h"

namespace mlseg {

using Json = nlohmann::ordered_json;

std::array<std::int64_t, 3> PlannedConfiguration::patch_zyx() const {
  if (patch_size.size() == 2) return {1, patch_size[0], patch_size[1]};
  return {patch_size.at(0), patch_size.at(1), patch_size.at(2)};
}

const PlannedConfiguration& PlansFile::configuration(const std::string& name) const {
  for (const auto& c : configurations) {
    if (c.name == name) return c;
  }
  std::string names;
  for (const auto& c : configurations) names += (names.empty() ? "" : ", ") + c.name;
  throw Error("plans.json has no configuration '" + name + "'",
              "use one `mlseg plan` wrote (" + names + "), or rerun `mlseg plan`", {source, "", ""});
}

bool PlannedConfiguration::use_mask_for_norm() const {
  for (const auto& n : normalization) {
    if (n.scheme == "zscore" && n.use_mask) return true;
  }
  return false;
}

bool PlansFile::has_configuration(const std::string& name) const {
  for (const auto& c : configurations) {
    if (c.name == name) return true;
  }
  return false;
}

namespace {

/// nnU-Net resolves `inherits_from` recursively; a chain longer than this is a loop.
constexpr int kMaxInheritanceDepth = 16;

Json resolve_inherited(const Json& configurations, const std::string& name, const std::string& source, const std::string& fix,
                       int depth) {
  if (depth > kMaxInheritanceDepth) throw Error("configuration '" + name + "' inherits in a loop", fix, {source, "", ""});
  if (!configurations.contains(name) || !configurations[name].is_object()) {
    std::string names;
    for (const auto& [n, c] : configurations.items()) names += (names.empty() ? "" : ", ") + n;
    throw Error("plans.json has no configuration '" + name + "' (it has " + names + ")", fix, {source, "", ""});
  }
  const Json& own = configurations[name];
  Json merged = Json::object();
  if (own.contains("inherits_from")) {
    if (!own["inherits_from"].is_string()) {
      throw Error("configurations." + name + ".inherits_from is not a configuration name", fix, {source, "", ""});
    }
    merged = resolve_inherited(configurations, own["inherits_from"].get<std::string>(), source, fix, depth + 1);
  }
  for (const auto& [key, value] : own.items()) merged[key] = value;
  merged.erase("inherits_from");
  return merged;
}

/// Keys of a cascade entry that do not change what is preprocessed.
bool only_links_stages(const Json& own) {
  for (const auto& [key, value] : own.items()) {
    if (key != "inherits_from" && key != "previous_stage" && key != "next_stage") return false;
  }
  return true;
}

}  // namespace

Json resolve_inherited_configuration(const Json& configurations, const std::string& name, const std::string& source,
                                     const std::string& fix) {
  return resolve_inherited(configurations, name, source, fix, 0);
}

PlansFile plans_from_json(const Json& json, const std::string& source) {
  const std::vector<PlansProblem> problems = check_plans(json);
  if (!problems.empty()) {
    std::string listed;
    for (std::size_t i = 0; i < problems.size() && i < 5; ++i) {
      listed += "\n  " + problems[i].key + ": " + problems[i].problem + " (fix: " + problems[i].fix + ")";
    }
    if (problems.size() > 5) listed += "\n  ... and " + std::to_string(problems.size() - 5) + " more";
    throw Error(std::to_string(problems.size()) + " problem(s) in plans.json:" + listed,
                "fix them (`mlseg plan --check` lists them all) or rerun `mlseg plan`", {source, "", ""});
  }
  PlansFile plans;
  plans.source = source;
  plans.json = json;
  try {
    // Inheriting entries (the cascade) become whole configurations, so that every stage reading
    // plans.json["configurations"][name] (architecture, normalisation) finds their keys.
    std::map<std::string, std::string> data_configuration;
    for (const auto& [name, c] : json.at("configurations").items()) {
      if (!c.contains("inherits_from")) continue;
      plans.json["configurations"][name] = resolve_inherited_configuration(json["configurations"], name, source, "rerun `mlseg plan`");
      std::string data = name;
      // (resolve_inherited_configuration above has already refused loops and unknown names.)
      Json own = c;
      for (int depth = 0; depth <= kMaxInheritanceDepth && only_links_stages(own) && own.contains("inherits_from"); ++depth) {
        data = own["inherits_from"].get<std::string>();
        own = json["configurations"].value(data, Json::object());
      }
      data_configuration[name] = data;
    }
    plans.dataset_name = json.value("dataset_name", std::string());
    plans.channel_names = json.value("channel_names", std::vector<std::string>{});
    plans.image_channel_names = json.value("image_channel_names", std::vector<std::string>{});
    plans.transpose_forward = json.value("transpose_forward", plans.transpose_forward);
    plans.transpose_backward = json.value("transpose_backward", plans.transpose_backward);
    for (const auto& [name, c] : plans.json.at("configurations").items()) {
      PlannedConfiguration configuration;
      configuration.name = name;
      if (c.contains("previous_stage") && c["previous_stage"].is_string()) configuration.previous_stage = c["previous_stage"];
      configuration.data_configuration = data_configuration.count(name) ? data_configuration[name] : name;
      configuration.patch_size = c.at("patch_size").get<std::vector<std::int64_t>>();
      configuration.spacing_mm = c.at("spacing").get<std::vector<double>>();
      configuration.batch_size = c.value("batch_size", configuration.batch_size);
      configuration.batch_dice = c.value("batch_dice", configuration.batch_dice);
      configuration.image_resampling_order =
          c.value("resampling_fn_data_kwargs", Json::object()).value("order", PlannedConfiguration::kDefaultImageResamplingOrder);
      configuration.normalization = normalization_from_plans(plans.json, name, source);
      plans.configurations.push_back(std::move(configuration));
    }
  } catch (const Json::exception& e) {
    throw Error(std::string("plans.json does not have the expected form: ") + e.what(), "rerun `mlseg plan`", {source, "", ""});
  }
  plans.encoding = LabelEncoding::from_json(json, plans.channel_names, source);
  return plans;
}

PlansFile read_plans(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    throw Error("plans.json not found", "run `mlseg plan DATASET` (or `mlseg preprocess`, which plans first)", {path.string(), "", ""});
  }
  return plans_from_json(read_json_file(path), path.string());
}

}  // namespace mlseg
