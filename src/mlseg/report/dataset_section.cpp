// Dataset summary: fingerprint, label format, plans and what has been preprocessed and trained.
#include <algorithm>
#include <filesystem>

#include "mlseg/report/report_sections.h"

namespace mlseg::report_detail {

namespace fs = std::filesystem;

namespace {

// Per-axis median of a list of [z, y, x] arrays, "32 x 48 x 48".
std::string median_zyx(const Json& cases, const std::string& key, const std::string& unit) {
  std::vector<std::vector<double>> axes(3);
  for (const Json& entry : cases) {
    const Json* values = find_key(entry, key);
    if (values == nullptr || !values->is_array() || values->size() != 3) continue;
    for (std::size_t a = 0; a < 3; ++a) {
      if ((*values)[a].is_number()) axes[a].push_back((*values)[a].get<double>());
    }
  }
  std::vector<std::string> parts;
  for (auto& axis : axes) {
    if (axis.empty()) return "";
    std::sort(axis.begin(), axis.end());
    const std::size_t n = axis.size();
    parts.push_back(format_report_number(n % 2 ? axis[n / 2] : (axis[n / 2 - 1] + axis[n / 2]) / 2));
  }
  return join(parts, " x ") + unit + " (z x y x x)";
}

std::string list_text(const Json* values, const std::string& separator = " x ") {
  if (values == nullptr || !values->is_array()) return "";
  std::vector<std::string> items;
  for (const Json& value : *values) {
    items.push_back(value.is_string() ? value.get<std::string>()
                                      : value.is_number() ? format_report_number(value.get<double>()) : value.dump());
  }
  return join(items, separator);
}

}  // namespace

void add_dataset_section(const ReportInputs& inputs, HtmlDocument& doc) {
  const RunLayout& layout = inputs.layout;
  doc.begin_section("dataset", "Dataset summary");
  for (const std::string& problem : inputs.problems) doc.warning("unreadable input: " + problem);

  std::vector<std::pair<std::string, std::string>> facts = {{"dataset", layout.dataset_name},
                                                            {"work folder", layout.dataset_work_dir.string()}};
  facts.emplace_back("raw dataset", layout.raw_dataset_dir.empty() ? layout.raw_dataset_note
                                                                   : layout.raw_dataset_dir.string() + " (" + layout.raw_dataset_note + ")");
  if (inputs.fingerprint) {
    const Json& fingerprint = *inputs.fingerprint;
    const Json* channels = find_key(fingerprint, "image_channels");
    if (channels != nullptr && channels->is_array()) {
      std::vector<std::string> names;
      for (const Json& name : *channels) names.push_back(name.is_string() ? name.get<std::string>() : name.dump());
      facts.emplace_back("image channels", join(names));
    }
    if (const Json* cases = find_key(fingerprint, "cases"); cases != nullptr && cases->is_array()) {
      facts.emplace_back("training cases", std::to_string(cases->size()));
      const std::string shape = median_zyx(*cases, "shape_zyx", "");
      if (!shape.empty()) facts.emplace_back("median shape", shape);
      const std::string spacing = median_zyx(*cases, "spacing_zyx_mm", " mm");
      if (!spacing.empty()) facts.emplace_back("median spacing", spacing);
    }
  }
  if (inputs.labels) {
    const Json& labels = *inputs.labels;
    if (const Json* format = find_key(labels, "label_format"); format != nullptr && format->is_string()) {
      const Json* regions = find_key(labels, "region_based");
      facts.emplace_back("label format", format->get<std::string>() +
                                             (regions != nullptr && regions->is_boolean() && regions->get<bool>() ? " (regions)" : ""));
    }
    if (const Json* combinations = find_key(labels, "combinations_observed"); combinations != nullptr && combinations->is_number()) {
      facts.emplace_back("channel combinations observed", format_report_number(combinations->get<double>()));
    }
  }
  if (!inputs.channel_names.empty()) {
    facts.emplace_back("label channels", std::to_string(inputs.channel_names.size()) + ": " + join(inputs.channel_names));
  }
  if (inputs.plans) {
    const Json* source = find_key(inputs.plans->json, "label_encoding_source");
    facts.emplace_back("planned encoding", inputs.plans->encoding.name() +
                                               (source != nullptr && source->is_string() ? " (" + source->get<std::string>() + ")" : ""));
  }
  facts.emplace_back("trained configurations", layout.configurations.empty() ? "none" : join(layout.configurations));
  doc.facts(facts);

  if (!inputs.fingerprint) {
    doc.missing("dataset fingerprint", (layout.analysis_dir() / "fingerprint.json").string(), inputs.command("analyze"));
  }

  doc.subheading("Plans");
  if (!inputs.plans) {
    doc.missing("plans", (layout.dataset_work_dir / "plans.json").string(), inputs.command("plan"));
  } else {
    std::vector<std::vector<HtmlCell>> rows;
    for (const PlannedConfiguration& configuration : inputs.plans->configurations) {
      const std::string& name = configuration.name;
      const fs::path store = layout.dataset_work_dir / "preprocessed" / name;
      std::string preprocessed = "no: run " + inputs.command("preprocess", "-c " + name);
      HtmlCell preprocessed_cell = text_cell(preprocessed, "na");
      if (fs::is_regular_file(store / "store.json")) {
        std::vector<std::string> problems;
        const auto store_json = read_optional_json(store / "store.json", problems);
        const Json* cases = store_json ? find_key(*store_json, "cases") : nullptr;
        preprocessed_cell = text_cell(cases != nullptr && cases->is_array() ? std::to_string(cases->size()) + " cases" : "yes", "ok");
      }
      std::vector<std::string> schemes;
      for (const ChannelNormalization& n : configuration.normalization) schemes.push_back(n.scheme);
      const Json patch(configuration.patch_size), spacing(configuration.spacing_mm);
      rows.push_back({text_cell(name), text_cell(list_text(&patch)), text_cell(std::to_string(configuration.batch_size)),
                      text_cell(list_text(&spacing)),
                      text_cell(join(schemes)), preprocessed_cell});
    }
    doc.table({"configuration", "patch size", "batch size", "spacing (mm)", "normalisation", "preprocessed"}, rows);
  }
  doc.end_section();
}

}  // namespace mlseg::report_detail
