#include "mlseg/io/store_layout.h"

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

const Json& require(const Json& json, const char* key, const std::string& source) {
  if (!json.is_object() || !json.contains(key)) {
    throw Error(std::string("missing key \"") + key + "\"",
                "re-run `mlseg preprocess` to rewrite the file (it was written by another version or edited)")
        .located({source, "", ""});
  }
  return json.at(key);
}

template <typename T>
T get(const Json& json, const char* key, const std::string& source) {
  try {
    return require(json, key, source).get<T>();
  } catch (const Json::exception& error) {
    throw Error(std::string("key \"") + key + "\" has the wrong type (" + error.what() + ")",
                "re-run `mlseg preprocess` to rewrite the file")
        .located({source, "", ""});
  }
}

Json geometry_to_json(const Geometry& geometry) {
  return Json{{"spacing_zyx_mm", geometry.spacing_zyx_mm},
              {"origin_zyx_mm", geometry.origin_zyx_mm},
              {"direction_zyx", geometry.direction_zyx}};
}

Geometry geometry_from_json(const Json& json, const std::string& source) {
  Geometry geometry;
  geometry.spacing_zyx_mm = get<std::array<double, 3>>(json, "spacing_zyx_mm", source);
  geometry.origin_zyx_mm = get<std::array<double, 3>>(json, "origin_zyx_mm", source);
  geometry.direction_zyx = get<std::array<std::array<double, 3>, 3>>(json, "direction_zyx", source);
  return geometry;
}

}  // namespace

std::filesystem::path store_image_file(const std::filesystem::path& store_dir, const std::string& case_id) {
  return store_dir / (case_id + kImageSuffix);
}
std::filesystem::path store_codes_file(const std::filesystem::path& store_dir, const std::string& case_id) {
  return store_dir / (case_id + kCodesSuffix);
}
std::filesystem::path store_prior_file(const std::filesystem::path& prior_dir, const std::string& case_id) {
  return prior_dir / (case_id + kPriorSuffix);
}
std::filesystem::path store_locations_file(const std::filesystem::path& store_dir, const std::string& case_id) {
  return store_dir / (case_id + kLocationsSuffix);
}
std::filesystem::path store_properties_file(const std::filesystem::path& store_dir, const std::string& case_id) {
  return store_dir / (case_id + ".json");
}
std::filesystem::path store_dir_for(const std::filesystem::path& dataset_work_dir, const std::string& configuration) {
  return dataset_work_dir / "preprocessed" / configuration;
}

Json store_info_to_json(const StoreInfo& info) {
  return Json{{"format", info.format},
              {"dataset", info.dataset},
              {"configuration", info.configuration},
              {"image_channels", info.image_channels},
              {"num_image_channels", info.num_image_channels},
              {"channel_names", info.channel_names},
              {"num_code_words", info.num_code_words},
              {"code_descr", info.code_descr},
              {"label_encoding", info.label_encoding},
              {"channels_overlap", info.channels_overlap},
              {"has_ignore", info.has_ignore},
              {"spacing_mm", info.spacing_mm},
              {"patch_size", info.patch_size},
              {"rare_policy", info.rare_policy},
              {"cases", info.cases}};
}

StoreInfo store_info_from_json(const Json& json, const std::string& source) {
  StoreInfo info;
  info.format = get<std::string>(json, "format", source);
  if (info.format != kStoreFormatVersion) {
    throw Error("the store format is \"" + info.format + "\", this mlseg reads \"" + kStoreFormatVersion + "\"",
                "re-run `mlseg preprocess` with this version of mlseg")
        .located({source, "", ""});
  }
  info.dataset = get<std::string>(json, "dataset", source);
  info.configuration = get<std::string>(json, "configuration", source);
  info.image_channels = get<std::vector<std::string>>(json, "image_channels", source);
  info.num_image_channels = get<int>(json, "num_image_channels", source);
  info.channel_names = get<std::vector<std::string>>(json, "channel_names", source);
  info.num_code_words = get<int>(json, "num_code_words", source);
  info.code_descr = get<std::string>(json, "code_descr", source);
  info.label_encoding = get<std::string>(json, "label_encoding", source);
  info.channels_overlap = get<bool>(json, "channels_overlap", source);
  info.has_ignore = get<bool>(json, "has_ignore", source);
  info.spacing_mm = get<std::array<double, 3>>(json, "spacing_mm", source);
  info.patch_size = get<std::vector<std::int64_t>>(json, "patch_size", source);
  info.rare_policy = get<std::string>(json, "rare_policy", source);
  info.cases = get<std::vector<std::string>>(json, "cases", source);
  return info;
}

Json case_properties_to_json(const CaseProperties& p) {
  Json locations = Json::array();
  for (const auto& group : p.locations) {
    Json entry{{"kind", group.kind}, {"name", group.name}};
    if (group.kind == "channel") entry["channel"] = group.channel;
    if (group.kind == "combination") {
      entry["code_words"] = group.code_words;
      entry["rare"] = group.rare;
    }
    entry["voxels"] = group.voxels;
    entry["offset"] = group.offset;
    entry["count"] = group.count;
    locations.push_back(std::move(entry));
  }
  Json changes = Json::array();
  for (const auto& change : p.rare_changes) {
    Json entry{{"combination", change.combination}, {"code_words", change.code_words}, {"action", change.action}};
    if (change.action == "merged") {
      entry["merged_into"] = change.merged_into;
      entry["merged_code_words"] = change.merged_code_words;
    }
    entry["voxels"] = change.voxels;
    changes.push_back(std::move(entry));
  }
  return Json{
      {"case", p.case_id},
      {"axes", "original_* in the image's own zyx axes; everything else in the planned axes (after transpose_forward)"},
      {"original_shape_zyx", p.original_shape_zyx},
      {"original_geometry", geometry_to_json(p.original_geometry)},
      {"transpose_forward", p.transpose_forward},
      {"transpose_backward", p.transpose_backward},
      {"crop_box", {{"begin", p.crop_begin}, {"end", p.crop_end}}},
      {"shape_after_crop", p.shape_after_crop},
      {"spacing_after_crop_mm", p.spacing_after_crop_mm},
      {"shape_after_resample", p.shape_after_resample},
      {"spacing_mm", p.spacing_mm},
      {"separate_axis", p.separate_axis},
      {"channel_voxels", p.channel_voxels},
      {"locations", std::move(locations)},
      {"rare_combinations", {{"policy", p.rare_policy}, {"changes", std::move(changes)}}},
      {"input_fingerprint", p.input_fingerprint},
  };
}

CaseProperties case_properties_from_json(const Json& json, const std::string& source) {
  CaseProperties p;
  p.case_id = get<std::string>(json, "case", source);
  p.original_shape_zyx = get<std::array<std::int64_t, 3>>(json, "original_shape_zyx", source);
  p.original_geometry = geometry_from_json(require(json, "original_geometry", source), source);
  p.transpose_forward = get<std::array<int, 3>>(json, "transpose_forward", source);
  p.transpose_backward = get<std::array<int, 3>>(json, "transpose_backward", source);
  const auto& crop = require(json, "crop_box", source);
  p.crop_begin = get<std::array<std::int64_t, 3>>(crop, "begin", source);
  p.crop_end = get<std::array<std::int64_t, 3>>(crop, "end", source);
  p.shape_after_crop = get<std::array<std::int64_t, 3>>(json, "shape_after_crop", source);
  p.spacing_after_crop_mm = get<std::array<double, 3>>(json, "spacing_after_crop_mm", source);
  p.shape_after_resample = get<std::array<std::int64_t, 3>>(json, "shape_after_resample", source);
  p.spacing_mm = get<std::array<double, 3>>(json, "spacing_mm", source);
  p.separate_axis = get<int>(json, "separate_axis", source);
  p.channel_voxels = get<std::vector<std::int64_t>>(json, "channel_voxels", source);
  for (const auto& entry : require(json, "locations", source)) {
    LocationGroup group;
    group.kind = get<std::string>(entry, "kind", source);
    group.name = get<std::string>(entry, "name", source);
    if (group.kind == "channel") group.channel = get<int>(entry, "channel", source);
    if (group.kind == "combination") {
      group.code_words = get<std::vector<std::uint64_t>>(entry, "code_words", source);
      group.rare = get<bool>(entry, "rare", source);
    }
    group.voxels = get<std::int64_t>(entry, "voxels", source);
    group.offset = get<std::int64_t>(entry, "offset", source);
    group.count = get<std::int64_t>(entry, "count", source);
    p.locations.push_back(std::move(group));
  }
  const auto& rare = require(json, "rare_combinations", source);
  p.rare_policy = get<std::string>(rare, "policy", source);
  for (const auto& entry : require(rare, "changes", source)) {
    RareCombinationChange change;
    change.combination = get<std::string>(entry, "combination", source);
    change.code_words = get<std::vector<std::uint64_t>>(entry, "code_words", source);
    change.action = get<std::string>(entry, "action", source);
    if (change.action == "merged") {
      change.merged_into = get<std::string>(entry, "merged_into", source);
      change.merged_code_words = get<std::vector<std::uint64_t>>(entry, "merged_code_words", source);
    }
    change.voxels = get<std::int64_t>(entry, "voxels", source);
    p.rare_changes.push_back(std::move(change));
  }
  p.input_fingerprint = get<std::string>(json, "input_fingerprint", source);
  return p;
}

}  // namespace mlseg
