// analyze's outputs: fingerprint.json, labels.json and the console report.
#include <sstream>

#include "mlseg/analysis/analyze.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/text_table.h"

namespace mlseg {

namespace {

nlohmann::ordered_json zyx(const std::array<std::int64_t, 3>& v) { return {v[0], v[1], v[2]}; }
nlohmann::ordered_json zyx(const std::array<double, 3>& v) { return {v[0], v[1], v[2]}; }

nlohmann::ordered_json channel_name_list(const std::vector<int>& channels, const std::vector<std::string>& names) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (int c : channels) list.push_back(names[c]);
  return list;
}

std::string combination_text(const CombinationStatistics& combo, const std::vector<std::string>& names) {
  std::string text;
  for (int c : combo.channels) text += (text.empty() ? "" : " + ") + names[c];
  if (combo.ignore) text += text.empty() ? "ignore" : " + ignore";
  return text;
}

const char* relation_name(ChannelRelation::Kind kind) {
  switch (kind) {
    case ChannelRelation::Kind::inside: return "inside";
    case ChannelRelation::Kind::disjoint: return "disjoint";
    case ChannelRelation::Kind::partial: return "partial_overlap";
  }
  return "";
}

}  // namespace

nlohmann::ordered_json fingerprint_to_json(const AnalysisResult& result) {
  nlohmann::ordered_json json;
  nlohmann::ordered_json intensity = nlohmann::ordered_json::object();
  for (std::size_t m = 0; m < result.intensity.size(); ++m) {
    const auto& s = result.intensity[m];
    nlohmann::ordered_json entry;
    if (!s.defined) {
      for (const char* key : {"max", "mean", "median", "min", "percentile_00_5", "percentile_99_5", "std"}) entry[key] = nullptr;
      entry["reason"] = "no_foreground";
    } else {
      entry = {{"max", s.max}, {"mean", s.mean}, {"median", s.median}, {"min", s.min},
               {"percentile_00_5", s.percentile_00_5}, {"percentile_99_5", s.percentile_99_5}, {"std", s.std}};
    }
    entry["num_samples"] = s.num_samples;
    intensity[std::to_string(m)] = entry;
  }
  // nnU-Net's keys first (same names and meaning), then mlseg's per-case detail.
  json["foreground_intensity_properties_per_channel"] = intensity;
  nlohmann::ordered_json spacings = nlohmann::ordered_json::array(), crops = nlohmann::ordered_json::array();
  for (const auto& fp : result.cases) {
    spacings.push_back(zyx(fp.spacing_zyx_mm));
    crops.push_back(zyx(fp.shape_after_crop_zyx));
  }
  json["median_relative_size_after_cropping"] = result.median_relative_size_after_cropping;
  json["shapes_after_crop"] = crops;
  json["spacings"] = spacings;
  json["dataset"] = result.dataset_name;
  json["image_channels"] = result.image_channels;
  json["axis_order"] = "zyx";
  nlohmann::ordered_json cases = nlohmann::ordered_json::array();
  for (const auto& fp : result.cases) {
    cases.push_back({{"case", fp.case_id},
                     {"shape_zyx", zyx(fp.shape_zyx)},
                     {"spacing_zyx_mm", zyx(fp.spacing_zyx_mm)},
                     {"shape_after_crop_zyx", zyx(fp.shape_after_crop_zyx)},
                     {"foreground_voxels", fp.foreground_voxels}});
  }
  json["cases"] = cases;
  return json;
}

nlohmann::ordered_json labels_to_json(const AnalysisResult& result, const AnalyzeOptions& options) {
  const auto& names = result.channel_names;
  nlohmann::ordered_json json;
  json["dataset"] = result.dataset_name;
  json["label_format"] = result.label_format;
  json["region_based"] = result.region_based;
  json["num_cases"] = result.cases.size();
  json["channel_names"] = names;
  nlohmann::ordered_json channels = nlohmann::ordered_json::array();
  for (const auto& ch : result.channels) {
    nlohmann::ordered_json volume_voxels, volume_ml;
    if (ch.cases_present > 0) {
      volume_voxels = {{"mean", ch.volume_voxels_mean}, {"median", ch.volume_voxels_median},
                       {"min", ch.volume_voxels_min}, {"max", ch.volume_voxels_max}};
      volume_ml = {{"mean", ch.volume_ml_mean}, {"median", ch.volume_ml_median}, {"min", ch.volume_ml_min},
                   {"max", ch.volume_ml_max}};
    } else {
      volume_voxels = {{"mean", nullptr}, {"median", nullptr}, {"min", nullptr}, {"max", nullptr}, {"reason", "absent"}};
      volume_ml = volume_voxels;
    }
    channels.push_back({{"name", ch.name},
                        {"voxels", ch.voxels},
                        {"cases_present", ch.cases_present},
                        {"case_presence_fraction", ch.case_presence_fraction},
                        {"volume_voxels", volume_voxels},
                        {"volume_ml", volume_ml},
                        {"fraction_of_foreground", ch.fraction_of_foreground},
                        {"fraction_of_voxels", ch.fraction_of_voxels},
                        {"mean_volume_fraction", ch.mean_volume_fraction},
                        {"foreground_selection_probability", ch.foreground_selection_probability}});
  }
  json["channels"] = channels;
  nlohmann::ordered_json combos = nlohmann::ordered_json::array();
  for (const auto& combo : result.combinations) {
    combos.push_back({{"channels", channel_name_list(combo.channels, names)},
                      {"ignore", combo.ignore},
                      {"code_words", combo.key},
                      {"voxels", combo.voxels},
                      {"cases", combo.cases},
                      {"rare", combo.rare}});
  }
  json["background_voxels"] = result.background_voxels;
  json["combinations_observed"] = result.combinations.size();
  json["combinations_possible_log2"] = names.size();
  json["rare_thresholds"] = {{"min_combo_voxels", options.min_combo_voxels}, {"min_combo_cases", options.min_combo_cases}};
  json["combinations"] = combos;
  json["cooccurrence"] = {{"overlap_voxels", result.overlap_voxels}, {"cases_together", result.cases_together}};
  nlohmann::ordered_json relations = nlohmann::ordered_json::array();
  for (const auto& r : result.relations) {
    relations.push_back({{"kind", relation_name(r.kind)},
                         {"first", names[r.first]},
                         {"second", names[r.second]},
                         {"overlap_voxels", r.overlap_voxels},
                         {"cases_together", r.cases_together}});
  }
  json["relations"] = relations;
  nlohmann::ordered_json per_channel = nlohmann::ordered_json::object();
  for (const auto& ch : result.channels) {
    per_channel[ch.name] = {{"bce_pos_weight", ch.pos_weight},
                            {"bce_pos_weight_unclipped", ch.pos_weight_unclipped},
                            {"sampling_weight", ch.sampling_weight},
                            {"case_presence_fraction", ch.case_presence_fraction},
                            {"mean_volume_fraction", ch.mean_volume_fraction},
                            {"foreground_selection_probability", ch.foreground_selection_probability}};
  }
  nlohmann::ordered_json rare = nlohmann::ordered_json::array();
  for (const auto& combo : result.combinations) {
    if (combo.rare) rare.push_back(channel_name_list(combo.channels, names));
  }
  json["recommendations"] = {{"encoding", result.recommended_encoding},
                             {"encoding_reason", result.encoding_reason},
                             {"per_channel", per_channel},
                             {"rare_combinations_to_merge_or_ignore", rare},
                             {"warnings", result.warnings}};
  json["splits"] = {{"method", result.split_method}, {"num_folds", result.folds.size()}, {"validation_coverage", result.fold_coverage}};
  json["seconds"] = result.seconds;
  return json;
}

std::string format_analysis_report(const AnalysisResult& result, bool verbose) {
  const auto& names = result.channel_names;
  std::ostringstream out;
  char buffer[64];
  auto fixed = [&](double value, int digits) {
    std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
    return std::string(buffer);
  };
  auto percent = [&](double fraction) { return fixed(100.0 * fraction, fraction < 0.001 && fraction > 0 ? 4 : 2) + "%"; };
  out << "mlseg analyze: " << result.dataset_name << " (" << result.cases.size() << " cases, " << names.size()
      << " channels, " << result.label_format << (result.region_based ? ", regions" : "") << ")\n\n";

  TextTable intensity({"image channel", "mean", "std", "min", "p0.5", "median", "p99.5", "max"});
  for (std::size_t m = 0; m < result.intensity.size(); ++m) {
    const auto& s = result.intensity[m];
    const std::string name = m < result.image_channels.size() ? result.image_channels[m] : std::to_string(m);
    if (!s.defined) {
      intensity.add_row({name, "n/a (no foreground)"});
      continue;
    }
    intensity.add_row({name, fixed(s.mean, 3), fixed(s.std, 3), fixed(s.min, 3), fixed(s.percentile_00_5, 3),
                       fixed(s.median, 3), fixed(s.percentile_99_5, 3), fixed(s.max, 3)});
  }
  out << "Foreground intensities\n" << intensity.render() << "\n";

  TextTable channels({"channel", "cases", "voxels", "median ml", "min ml", "max ml", "of fg", "pos_weight", "sampling w"});
  for (const auto& ch : result.channels) {
    const bool present = ch.cases_present > 0;
    channels.add_row({ch.name, std::to_string(ch.cases_present) + "/" + std::to_string(result.cases.size()),
                      std::to_string(ch.voxels), present ? fixed(ch.volume_ml_median, 3) : "n/a (absent)",
                      present ? fixed(ch.volume_ml_min, 3) : "-", present ? fixed(ch.volume_ml_max, 3) : "-",
                      percent(ch.fraction_of_foreground), present ? fixed(ch.pos_weight, 1) : "-",
                      present ? fixed(ch.sampling_weight, 2) : "-"});
  }
  out << "Channels\n" << channels.render() << "\n";

  TextTable combos({"combination", "voxels", "cases", ""});
  const std::size_t shown = verbose ? result.combinations.size() : std::min<std::size_t>(15, result.combinations.size());
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& combo = result.combinations[i];
    combos.add_row({combination_text(combo, names), std::to_string(combo.voxels), std::to_string(combo.cases),
                    combo.rare ? "rare" : ""});
  }
  out << "Channel combinations: " << result.combinations.size() << " observed of 2^" << names.size() << " possible";
  if (names.size() <= 62) out << " (" << (std::uint64_t{1} << names.size()) << ")";
  out << "\n" << combos.render();
  if (shown < result.combinations.size()) out << "... " << result.combinations.size() - shown << " more (-v or labels.json)\n";
  out << "\n";

  std::size_t inside = 0, partial = 0, disjoint = 0;
  std::string nesting, partials;
  for (const auto& r : result.relations) {
    if (r.kind == ChannelRelation::Kind::inside) {
      ++inside;
      if (inside <= 20 || verbose) nesting += "  " + names[r.first] + " lies inside " + names[r.second] + " in every case\n";
    } else if (r.kind == ChannelRelation::Kind::partial) {
      ++partial;
      if (partial <= 10 || verbose) {
        partials += "  " + names[r.first] + " and " + names[r.second] + " partly overlap (" +
                    std::to_string(r.overlap_voxels) + " voxels)\n";
      }
    } else {
      ++disjoint;
    }
  }
  out << "Overlap: " << inside << " nested pairs, " << partial << " partially overlapping, " << disjoint
      << " disjoint (present together, never overlapping)\n" << nesting << partials << "\n";

  out << "Recommended encoding: " << result.recommended_encoding << "\n  " << result.encoding_reason << "\n\n";

  if (!result.folds.empty()) {
    std::vector<std::string> header{"channel"};
    for (std::size_t f = 0; f < result.folds.size(); ++f) header.push_back("fold " + std::to_string(f));
    TextTable coverage(header);
    for (std::size_t c = 0; c < names.size(); ++c) {
      std::vector<std::string> row{names[c]};
      for (std::size_t f = 0; f < result.folds.size(); ++f) {
        const auto n = result.fold_coverage[c][f];
        row.push_back(std::to_string(n) + "/" + std::to_string(result.folds[f].val.size()) +
                      (n == 0 && result.channels[c].cases_present > 0 ? " !!" : ""));
      }
      coverage.add_row(row);
    }
    out << "Validation cases containing each channel (" << result.split_method << " folds)\n" << coverage.render() << "\n";
  }
  for (const auto& warning : result.warnings) out << "WARNING: " << warning << "\n";
  if (!result.output_dir.empty()) {
    out << (result.warnings.empty() ? "" : "\n") << "wrote " << (result.output_dir / "analysis" / "fingerprint.json").string()
        << ", " << (result.output_dir / "analysis" / "labels.json").string();
    if (!result.folds.empty()) out << ", " << (result.output_dir / "splits_final.json").string() << (result.split_method == "existing" ? " (kept)" : "");
    out << "\n";
  }
  out << "analyze: " << format_duration(result.seconds) << "\n";
  return out.str();
}

}  // namespace mlseg
