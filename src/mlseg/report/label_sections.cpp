// Label statistics (presence, combinations, co-occurrence and nesting) and fold coverage, from
// analyze's labels.json and splits_final.json.
#include <algorithm>
#include <cmath>
#include <set>

#include "mlseg/core/svg_plot.h"
#include "mlseg/report/channel_colour.h"
#include "mlseg/report/report_sections.h"

namespace mlseg::report_detail {

namespace {

constexpr std::size_t kMaxCombinationBars = 40;
constexpr int kHeatmapWidthPx = 640;   // cells shrink to fit many channels
constexpr int kMinReadableCellPx = 30;  // smaller cells get no text

std::string percent(double fraction) {
  if (!std::isfinite(fraction)) return undefined_text("");
  return format_report_number(std::round(fraction * 1000.0) / 10.0) + "%";
}

std::string string_or(const Json* value, const std::string& fallback) {
  return value != nullptr && value->is_string() ? value->get<std::string>() : fallback;
}

void add_presence(const Json& labels, HtmlDocument& doc) {
  const Json* channels = find_key(labels, "channels");
  if (channels == nullptr || !channels->is_array() || channels->empty()) {
    doc.note("labels.json lists no channels.");
    return;
  }
  const double num_cases = number_or_nan(find_key(labels, "num_cases"));
  BarChart chart;
  chart.title = "Cases containing each channel";
  chart.value_label = "training cases containing the channel";
  std::vector<std::vector<HtmlCell>> rows;
  for (std::size_t c = 0; c < channels->size(); ++c) {
    const Json& channel = (*channels)[c];
    const std::string name = string_or(find_key(channel, "name"), "channel " + std::to_string(c));
    const double present = number_or_nan(find_key(channel, "cases_present"));
    std::string annotation = format_report_number(present);
    if (std::isfinite(num_cases)) annotation += " / " + format_report_number(num_cases) + " (" + percent(present / num_cases) + ")";
    chart.bars.push_back({name, present, annotation, channel_colour(c)});
    const Json* volume = find_key(channel, "volume_ml");
    rows.push_back({text_cell(name), number_cell(present), value_cell(find_key(channel, "voxels")),
                    text_cell(percent(number_or_nan(find_key(channel, "fraction_of_foreground"))), "num"),
                    volume != nullptr ? value_cell(find_key(*volume, "median")) : value_cell(nullptr, "not in labels.json")});
  }
  doc.raw("<div class=\"charts\">" + bar_chart_svg(chart) + "</div>");
  doc.table({"channel", "cases present", "voxels", "of foreground", "median volume (ml)"}, rows);
}

void add_combinations(const Json& labels, HtmlDocument& doc) {
  const Json* combinations = find_key(labels, "combinations");
  if (combinations == nullptr || !combinations->is_array()) {
    doc.note("labels.json has no combination histogram.");
    return;
  }
  struct Entry {
    std::string label;
    double voxels;
    double cases;
    bool rare;
  };
  std::vector<Entry> entries;
  if (const Json* background = find_key(labels, "background_voxels"); background != nullptr && background->is_number()) {
    entries.push_back({"background (no channel)", background->get<double>(), std::nan(""), false});
  }
  for (const Json& combination : *combinations) {
    std::vector<std::string> names;
    if (const Json* channels = find_key(combination, "channels"); channels != nullptr && channels->is_array()) {
      for (const Json& name : *channels) names.push_back(name.is_string() ? name.get<std::string>() : name.dump());
    }
    const Json* ignore = find_key(combination, "ignore");
    std::string label = names.empty() ? "(none)" : join(names, " + ");
    if (ignore != nullptr && ignore->is_boolean() && ignore->get<bool>()) label += " (ignore)";
    const Json* rare = find_key(combination, "rare");
    entries.push_back({label, number_or_nan(find_key(combination, "voxels")), number_or_nan(find_key(combination, "cases")),
                       rare != nullptr && rare->is_boolean() && rare->get<bool>()});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.voxels > b.voxels; });
  BarChart chart;
  chart.title = "Channel combinations (voxels per combination)";
  chart.value_label = "voxels";
  chart.log_x = true;
  std::size_t rare_count = 0;
  for (const Entry& entry : entries) rare_count += entry.rare ? 1 : 0;
  for (std::size_t i = 0; i < entries.size() && i < kMaxCombinationBars; ++i) {
    const Entry& entry = entries[i];
    std::string annotation = format_report_number(entry.voxels) + " voxels";
    if (std::isfinite(entry.cases)) annotation += ", " + format_report_number(entry.cases) + " cases";
    if (entry.rare) annotation += ", rare";
    chart.bars.push_back({entry.label, entry.voxels, annotation, entry.rare ? palette_colour(3) : palette_colour(0)});
  }
  doc.raw("<div class=\"charts\">" + bar_chart_svg(chart) + "</div>");
  std::string note = std::to_string(combinations->size()) + " combinations observed";
  if (const Json* possible = find_key(labels, "combinations_possible_log2"); possible != nullptr && possible->is_number()) {
    note += " of 2^" + format_report_number(possible->get<double>()) + " possible";
  }
  note += "; " + std::to_string(rare_count) + " rare (drawn in vermillion)";
  if (const Json* thresholds = find_key(labels, "rare_thresholds"); thresholds != nullptr && thresholds->is_object()) {
    note += ": fewer than " + format_report_number(number_or_nan(find_key(*thresholds, "min_combo_voxels"))) +
            " voxels or " + format_report_number(number_or_nan(find_key(*thresholds, "min_combo_cases"))) + " cases";
  }
  if (entries.size() > kMaxCombinationBars) {
    note += "; the " + std::to_string(entries.size() - kMaxCombinationBars) + " smallest are not drawn";
  }
  doc.note(note + ". Log scale.");
}

void add_cooccurrence(const Json& labels, const std::vector<std::string>& names, HtmlDocument& doc) {
  const Json* cooccurrence = find_key(labels, "cooccurrence");
  const Json* overlap = cooccurrence != nullptr ? find_key(*cooccurrence, "overlap_voxels") : nullptr;
  if (overlap == nullptr || !overlap->is_array() || overlap->size() != names.size() || names.empty()) {
    doc.note("labels.json has no co-occurrence matrix.");
    return;
  }
  const std::size_t n = names.size();
  Heatmap chart;
  chart.title = "Co-occurrence: share of the row channel's voxels also in the column channel";
  chart.row_axis_label = "channel (row)";
  chart.column_axis_label = "also in channel (column)";
  chart.row_labels = names;
  chart.column_labels = names;
  chart.value_meaning = "share of row voxels";
  chart.marker_meaning = "row channel lies inside column channel (nested)";
  chart.cell_size = std::clamp(kHeatmapWidthPx / static_cast<int>(n), 12, 48);
  chart.show_cell_text = chart.cell_size >= kMinReadableCellPx;
  chart.values.assign(n, std::vector<double>(n, std::nan("")));
  chart.cell_text.assign(n, std::vector<std::string>(n));
  chart.marked.assign(n, std::vector<bool>(n, false));
  for (std::size_t r = 0; r < n; ++r) {
    const Json& row = (*overlap)[r];
    if (!row.is_array() || row.size() != n) continue;
    const double own = row[r].is_number() ? row[r].get<double>() : std::nan("");
    for (std::size_t c = 0; c < n; ++c) {
      const double shared = row[c].is_number() ? row[c].get<double>() : std::nan("");
      if (own > 0 && std::isfinite(shared)) {
        chart.values[r][c] = shared / own;
        chart.cell_text[r][c] = percent(shared / own);
      } else {
        chart.cell_text[r][c] = "n/a";
      }
    }
  }
  std::vector<std::vector<HtmlCell>> rows;
  if (const Json* relations = find_key(labels, "relations"); relations != nullptr && relations->is_array()) {
    for (const Json& relation : *relations) {
      const std::string kind = string_or(find_key(relation, "kind"), "");
      const std::string first = string_or(find_key(relation, "first"), "");
      const std::string second = string_or(find_key(relation, "second"), "");
      const auto row = std::find(names.begin(), names.end(), first);
      const auto column = std::find(names.begin(), names.end(), second);
      if (kind == "inside" && row != names.end() && column != names.end()) {
        chart.marked[static_cast<std::size_t>(row - names.begin())][static_cast<std::size_t>(column - names.begin())] = true;
      }
      rows.push_back({text_cell(first), text_cell(kind == "inside" ? "inside (nested in)" : kind), text_cell(second),
                      value_cell(find_key(relation, "overlap_voxels")), value_cell(find_key(relation, "cases_together"))});
    }
  }
  doc.raw("<div class=\"charts\">" + heatmap_svg(chart) + "</div>");
  if (!rows.empty()) {
    doc.subheading("Channel relations");
    doc.table({"channel", "relation", "channel", "overlap voxels", "cases together"}, rows);
  }
}

}  // namespace

void add_label_statistics_section(const ReportInputs& inputs, HtmlDocument& doc) {
  doc.begin_section("labels", "Label statistics");
  if (!inputs.labels) {
    doc.missing("label statistics", (inputs.layout.analysis_dir() / "labels.json").string(), inputs.command("analyze"));
    doc.end_section();
    return;
  }
  doc.subheading("Presence per channel");
  add_presence(*inputs.labels, doc);
  doc.subheading("Combination histogram");
  add_combinations(*inputs.labels, doc);
  doc.subheading("Co-occurrence and nesting");
  add_cooccurrence(*inputs.labels, inputs.channel_names, doc);
  if (const Json* recommendations = find_key(*inputs.labels, "recommendations"); recommendations != nullptr) {
    const Json* encoding = find_key(*recommendations, "encoding");
    const Json* reason = find_key(*recommendations, "encoding_reason");
    if (encoding != nullptr && encoding->is_string()) {
      doc.paragraph("Recommended encoding: " + encoding->get<std::string>() +
                    (reason != nullptr && reason->is_string() ? ". " + reason->get<std::string>() : ""));
    }
    if (const Json* warnings = find_key(*recommendations, "warnings"); warnings != nullptr && warnings->is_array()) {
      for (const Json& warning : *warnings) doc.warning(warning.is_string() ? warning.get<std::string>() : warning.dump());
    }
  }
  doc.end_section();
}

void add_fold_coverage_section(const ReportInputs& inputs, HtmlDocument& doc) {
  doc.begin_section("folds", "Fold coverage");
  const Json* coverage = nullptr;
  std::string method;
  if (inputs.labels) {
    if (const Json* splits = find_key(*inputs.labels, "splits"); splits != nullptr) {
      coverage = find_key(*splits, "validation_coverage");
      method = string_or(find_key(*splits, "method"), "");
    }
  }
  if (!inputs.splits && coverage == nullptr) {
    doc.missing("folds", (inputs.layout.dataset_work_dir / "splits_final.json").string(), inputs.command("analyze"));
    doc.end_section();
    return;
  }
  std::size_t num_folds = 0;
  if (inputs.splits && inputs.splits->is_array()) num_folds = inputs.splits->size();
  if (coverage != nullptr && coverage->is_array() && !coverage->empty() && (*coverage)[0].is_array()) {
    num_folds = std::max(num_folds, (*coverage)[0].size());
  }
  std::vector<std::string> header = {"channel"};
  for (std::size_t f = 0; f < num_folds; ++f) header.push_back("fold " + std::to_string(f));
  std::vector<std::vector<HtmlCell>> rows;
  if (inputs.splits && inputs.splits->is_array()) {
    std::vector<HtmlCell> train = {text_cell("training cases")}, validation = {text_cell("validation cases")};
    for (std::size_t f = 0; f < num_folds; ++f) {
      const Json* fold = f < inputs.splits->size() ? &(*inputs.splits)[f] : nullptr;
      const Json* train_cases = fold != nullptr ? find_key(*fold, "train") : nullptr;
      const Json* val_cases = fold != nullptr ? find_key(*fold, "val") : nullptr;
      train.push_back(train_cases != nullptr && train_cases->is_array() ? number_cell(static_cast<double>(train_cases->size()))
                                                                        : value_cell(nullptr));
      validation.push_back(val_cases != nullptr && val_cases->is_array() ? number_cell(static_cast<double>(val_cases->size()))
                                                                         : value_cell(nullptr));
    }
    rows.push_back(train);
    rows.push_back(validation);
  }
  std::vector<std::string> uncovered;
  if (coverage != nullptr && coverage->is_array()) {
    for (std::size_t c = 0; c < coverage->size(); ++c) {
      const std::string name = c < inputs.channel_names.size() ? inputs.channel_names[c] : "channel " + std::to_string(c);
      std::vector<HtmlCell> row = {text_cell(name)};
      for (std::size_t f = 0; f < num_folds; ++f) {
        const Json& counts = (*coverage)[c];
        const double count = counts.is_array() && f < counts.size() && counts[f].is_number() ? counts[f].get<double>() : std::nan("");
        if (count == 0) {
          row.push_back(text_cell("0 (absent_from_validation)", "warn"));
          uncovered.push_back(name + " in fold " + std::to_string(f));
        } else {
          row.push_back(number_cell(count));
        }
      }
      rows.push_back(row);
    }
  }
  doc.table(header, rows);
  doc.note("Channel rows: validation cases of each fold that contain the channel" +
           (method.empty() ? std::string() : " (" + method + " split)") + ".");
  if (coverage == nullptr) doc.note("labels.json has no per-channel fold coverage: run " + inputs.command("analyze"));
  if (!uncovered.empty()) {
    doc.warning("No validation voxels for " + join(uncovered) +
                ": validation Dice of these channels is n/a (absent_from_validation) in those folds.");
  }
  doc.end_section();
}

}  // namespace mlseg::report_detail
