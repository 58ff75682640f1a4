// Final validation (per case and channel, undefined values with their reasons), the evaluation
// summary (aggregates per channel and fold) and slice images of validation cases.
#include <cmath>
#include <filesystem>
#include <map>

#include "mlseg/core/error.h"
#include "mlseg/core/html_escape.h"
#include "mlseg/core/png_write.h"
#include "mlseg/report/channel_colour.h"
#include "mlseg/report/report_sections.h"
#include "mlseg/report/validation_slices.h"

namespace mlseg::report_detail {

namespace fs = std::filesystem;

namespace {

constexpr const char* kValidationFolder = "validation";
constexpr const char* kSummaryFile = "summary.json";

std::string reason_of(const Json& object, const std::string& metric) {
  if (const Json* reasons = find_key(object, "reasons"); reasons != nullptr) {
    if (const Json* reason = find_key(*reasons, metric); reason != nullptr && reason->is_string()) return reason->get<std::string>();
  }
  if (const Json* reason = find_key(object, "reason"); reason != nullptr && reason->is_string()) return reason->get<std::string>();
  return "";
}

HtmlCell metric_cell(const Json& object, const std::string& metric) {
  return value_cell(find_key(object, metric), reason_of(object, metric));
}

std::string evaluate_command(const ReportInputs& inputs, const std::string& fold) {
  const std::string raw = inputs.layout.raw_dataset_dir.empty() ? "RAW_DATASET" : inputs.layout.raw_dataset_dir.string();
  return "mlseg train (its final validation), or mlseg evaluate --ref " + raw + " --pred " +
         (inputs.layout.fold_dir(fold) / kValidationFolder).string();
}

struct FoldSummaries {
  std::vector<std::pair<std::string, Json>> found;
  std::vector<std::string> missing;     ///< folds without summary.json
  std::vector<std::string> unreadable;  ///< "fold K: problem"
};

FoldSummaries read_summaries(const ReportInputs& inputs) {
  FoldSummaries summaries;
  for (const std::string& fold : inputs.layout.folds) {
    const fs::path path = inputs.layout.fold_dir(fold) / kValidationFolder / kSummaryFile;
    std::vector<std::string> problems;
    auto summary = read_optional_json(path, problems);
    if (summary) {
      summaries.found.emplace_back(fold, std::move(*summary));
    } else if (!problems.empty()) {
      summaries.unreadable.push_back("fold " + fold + ": " + problems.front());
    } else {
      summaries.missing.push_back(fold);
    }
  }
  return summaries;
}

// Channel names in the summary's order (per-case metrics' keys, else "mean"'s).
std::vector<std::string> summary_channels(const Json& summary) {
  std::vector<std::string> names;
  const Json* source = nullptr;
  if (const Json* per_case = find_key(summary, "metric_per_case"); per_case != nullptr && per_case->is_array() && !per_case->empty()) {
    source = find_key((*per_case)[0], "metrics");
  }
  if (source == nullptr) source = find_key(summary, "mean");
  if (source != nullptr && source->is_object()) {
    for (const auto& [name, value] : source->items()) names.push_back(name);
  }
  return names;
}

}  // namespace

void add_final_validation_section(const ReportInputs& inputs, HtmlDocument& doc) {
  doc.begin_section("final-validation", "Final validation");
  const FoldSummaries summaries = read_summaries(inputs);
  if (inputs.layout.folds.empty()) {
    doc.missing("final validation", (inputs.layout.dataset_work_dir / "results").string(), inputs.command("train"));
  }
  for (const auto& [fold, summary] : summaries.found) {
    doc.subheading("Fold " + fold + ": Dice per case and channel");
    const std::vector<std::string> channels = summary_channels(summary);
    std::vector<std::string> header = {"case"};
    for (const std::string& channel : channels) header.push_back(channel);
    std::vector<std::vector<HtmlCell>> rows;
    std::map<std::string, int> undefined_reasons;
    if (const Json* per_case = find_key(summary, "metric_per_case"); per_case != nullptr && per_case->is_array()) {
      for (const Json& entry : *per_case) {
        const Json* case_id = find_key(entry, "case_id");
        std::vector<HtmlCell> row = {text_cell(case_id != nullptr && case_id->is_string() ? case_id->get<std::string>() : "?")};
        const Json* metrics = find_key(entry, "metrics");
        for (const std::string& channel : channels) {
          const Json* values = metrics != nullptr ? find_key(*metrics, channel) : nullptr;
          HtmlCell cell = values != nullptr ? metric_cell(*values, "Dice") : value_cell(nullptr, "not scored");
          if (cell.css_class == "na") ++undefined_reasons[cell.text];
          row.push_back(cell);
        }
        rows.push_back(row);
      }
    }
    doc.table(header, rows);
    if (!undefined_reasons.empty()) {
      std::vector<std::string> parts;
      for (const auto& [text, count] : undefined_reasons) parts.push_back(std::to_string(count) + " x " + text);
      doc.note("Undefined Dice values: " + join(parts) +
               ". They are left out of the means under the default --empty-policy exclude (see the evaluation summary).");
    }
    const fs::path csv = inputs.layout.fold_dir(fold) / kValidationFolder / "metrics_per_case.csv";
    if (fs::is_regular_file(csv)) doc.note("Every metric per case: " + csv.string());
  }
  for (const std::string& problem : summaries.unreadable) doc.warning(problem);
  for (const std::string& fold : summaries.missing) {
    doc.missing("final validation of fold " + fold,
                (inputs.layout.fold_dir(fold) / kValidationFolder / kSummaryFile).string(), evaluate_command(inputs, fold));
  }
  doc.end_section();
}

void add_evaluation_summary_section(const ReportInputs& inputs, HtmlDocument& doc) {
  doc.begin_section("evaluation", "Evaluation summary");
  const auto summaries = read_summaries(inputs).found;
  if (summaries.empty()) {
    doc.missing("evaluation summary", (inputs.layout.results_dir() / "fold_<k>" / kValidationFolder / kSummaryFile).string(),
                inputs.layout.folds.empty() ? inputs.command("train") : evaluate_command(inputs, inputs.layout.folds.front()));
    doc.end_section();
    return;
  }
  // Across folds: foreground mean and each channel's mean Dice.
  std::vector<std::string> channels = summary_channels(summaries.front().second);
  std::vector<std::string> header = {"fold", "cases", "foreground mean Dice"};
  for (const std::string& channel : channels) header.push_back(channel);
  std::vector<std::vector<HtmlCell>> rows;
  for (const auto& [fold, summary] : summaries) {
    const Json* extras = find_key(summary, "mlseg");
    const Json* per_case = find_key(summary, "metric_per_case");
    std::vector<HtmlCell> row = {text_cell(fold), per_case != nullptr && per_case->is_array()
                                                      ? number_cell(static_cast<double>(per_case->size()))
                                                      : value_cell(nullptr)};
    HtmlCell foreground = value_cell(nullptr);
    if (const Json* mean = find_key(summary, "foreground_mean"); mean != nullptr) {
      foreground = metric_cell(*mean, "Dice");
      const Json* counts = extras != nullptr ? find_key(*extras, "foreground_mean_n_channels") : nullptr;
      const Json* n = counts != nullptr ? find_key(*counts, "Dice") : nullptr;
      if (n != nullptr && n->is_number()) foreground.text += " (" + format_report_number(n->get<double>()) + " channels)";
    }
    row.push_back(foreground);
    const Json* means = find_key(summary, "mean");
    for (const std::string& channel : channels) {
      const Json* values = means != nullptr ? find_key(*means, channel) : nullptr;
      row.push_back(values != nullptr ? metric_cell(*values, "Dice") : value_cell(nullptr, "not scored"));
    }
    rows.push_back(row);
  }
  doc.subheading("Mean Dice per fold");
  doc.table(header, rows);

  for (const auto& [fold, summary] : summaries) {
    const Json* extras = find_key(summary, "mlseg");
    const Json* aggregates = extras != nullptr ? find_key(*extras, "aggregates") : nullptr;
    const Json* pooled = extras != nullptr ? find_key(*extras, "pooled") : nullptr;
    if (aggregates == nullptr || !aggregates->is_object()) {
      doc.note("Fold " + fold + ": summary.json has no mlseg aggregates (written by another tool?); only means are shown.");
      continue;
    }
    doc.subheading("Fold " + fold + ": aggregates per channel");
    std::vector<std::vector<HtmlCell>> channel_rows;
    for (const auto& [channel, metrics] : aggregates->items()) {
      const Json* dice = find_key(metrics, "Dice");
      std::vector<HtmlCell> row = {text_cell(channel)};
      if (dice != nullptr) {
        const std::string reason = reason_of(*dice, "mean");
        row.push_back(value_cell(find_key(*dice, "mean"), reason));
        row.push_back(value_cell(find_key(*dice, "median"), reason));
        row.push_back(value_cell(find_key(*dice, "std"), reason));
        row.push_back(text_cell(format_report_number(number_or_nan(find_key(*dice, "n_defined"))) + " / " +
                                    format_report_number(number_or_nan(find_key(*dice, "n_values"))),
                                "num"));
        std::vector<std::string> undefined;
        if (const Json* counts = find_key(*dice, "n_undefined"); counts != nullptr && counts->is_object()) {
          for (const auto& [reason_name, count] : counts->items()) {
            if (count.is_number() && count.get<double>() > 0) {
              undefined.push_back(format_report_number(count.get<double>()) + " " + reason_name);
            }
          }
        }
        row.push_back(text_cell(undefined.empty() ? "-" : join(undefined), undefined.empty() ? "" : "na"));
      } else {
        for (int k = 0; k < 5; ++k) row.push_back(value_cell(nullptr, "not computed"));
      }
      const Json* pooled_channel = pooled != nullptr ? find_key(*pooled, channel) : nullptr;
      row.push_back(pooled_channel != nullptr ? metric_cell(*pooled_channel, "Dice") : value_cell(nullptr, "not computed"));
      for (const char* metric : {"HD95", "NSD"}) {
        const Json* aggregate = find_key(metrics, metric);
        row.push_back(aggregate != nullptr ? value_cell(find_key(*aggregate, "mean"), reason_of(*aggregate, "mean"))
                                           : value_cell(nullptr, "not computed"));
      }
      channel_rows.push_back(row);
    }
    doc.table({"channel", "Dice mean", "Dice median", "Dice std", "defined / cases", "undefined (reason)",
               "Dice of pooled counts", "HD95 mean (mm)", "NSD mean"},
              channel_rows);
    if (const Json* policy = find_key(*extras, "empty_policy"); policy != nullptr && policy->is_string()) {
      doc.note("Empty policy: " + policy->get<std::string>() + " (what undefined values become inside means).");
    }
  }
  doc.end_section();
}

void add_validation_images_section(const ReportInputs& inputs, HtmlDocument& doc) {
  doc.begin_section("slices", "Validation slices");
  const RunLayout& layout = inputs.layout;
  if (layout.folds.empty()) {
    doc.missing("validation predictions", (layout.dataset_work_dir / "results").string(), inputs.command("train"));
    doc.end_section();
    return;
  }
  int remaining = std::max(0, inputs.options.max_slice_cases);
  bool legend_written = false;
  for (const std::string& fold : layout.folds) {
    if (remaining == 0) break;
    const fs::path validation_dir = layout.fold_dir(fold) / kValidationFolder;
    if (!fs::is_directory(validation_dir)) {
      doc.missing("validation predictions of fold " + fold, validation_dir.string(),
                  inputs.command("train", "-c " + layout.configuration + " -f " + fold));
      continue;
    }
    if (layout.raw_dataset_dir.empty()) {
      doc.note("No slice images: " + layout.raw_dataset_note + ".");
      break;
    }
    ValidationSlices slices;
    ValidationSliceOptions options;
    options.max_cases = remaining;
    try {
      slices = render_validation_slices(layout.raw_dataset_dir, validation_dir, options);
    } catch (const std::exception& error) {
      doc.warning("slice images unavailable: " + error_message(error));
      break;
    }
    for (const std::string& problem : slices.problems) doc.warning("fold " + fold + ": " + problem);
    if (slices.cases.empty()) {
      doc.note("Fold " + fold + ": no prediction in " + validation_dir.string() + " matches a case of the raw dataset.");
      continue;
    }
    if (!legend_written) {
      std::string legend = "<p class=\"legend\">Outline: reference; translucent fill: prediction.";
      for (std::size_t c = 0; c < slices.channel_names.size(); ++c) {
        legend += "<span class=\"swatch\" style=\"background:" + channel_colour(c) + "\"></span>" +
                  escape_html(slices.channel_names[c]);
      }
      doc.raw(legend + "</p>");
      legend_written = true;
    }
    for (const CaseSlices& case_slices : slices.cases) {
      doc.subheading("Fold " + fold + ", case " + case_slices.case_id);
      std::string figures = "<div class=\"slices\">";
      for (const SlicePanel& panel : case_slices.panels) {
        figures += "<figure><img width=\"" + std::to_string(panel.image.width) + "\" height=\"" +
                   std::to_string(panel.image.height) + "\" alt=\"" + escape_html(case_slices.case_id + ": " + panel.title) +
                   "\" src=\"data:image/png;base64," + embeddable_base64(base64_encode(encode_png(panel.image))) +
                   "\"><figcaption>" + escape_html(panel.title) + "</figcaption></figure>";
      }
      doc.raw(figures + "</div>");
      for (const std::string& note : case_slices.notes) doc.note(note);
      --remaining;
    }
  }
  doc.note("Axial slices in array order (z); each image's grey window is its own 0.5-99.5 percentile range.");
  doc.end_section();
}

}  // namespace mlseg::report_detail
