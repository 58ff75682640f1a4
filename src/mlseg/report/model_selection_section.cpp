// The report's "Model selection" section: what `mlseg find-best-config` wrote to
// WORK/<dataset>/model_selection/inference_information.json — every configuration and ensemble
// with its cross-validation Dice, the choice, the postprocessing decision and the commands.
#include "mlseg/core/html_escape.h"
#include "mlseg/report/report_sections.h"

namespace mlseg::report_detail {
namespace fs = std::filesystem;

void add_model_selection_section(const ReportInputs& inputs, HtmlDocument& doc) {
  doc.begin_section("model-selection", "Model selection");
  const fs::path file = inputs.layout.dataset_work_dir / "model_selection" / "inference_information.json";
  std::vector<std::string> problems;
  const std::optional<Json> info = read_optional_json(file, problems);
  if (!info || !info->is_object()) {
    doc.missing("model selection", file.string(), inputs.command("find-best-config"));
    for (const auto& problem : problems) doc.warning(problem);
    doc.end_section();
    return;
  }
  const Json* best = find_key(*info, "best");
  const Json* best_name = best != nullptr ? find_key(*best, "name") : nullptr;
  const std::string chosen = best_name != nullptr && best_name->is_string() ? best_name->get<std::string>() : "";
  std::vector<std::string> folds;
  if (const Json* listed = find_key(*info, "folds"); listed != nullptr && listed->is_array()) {
    for (const auto& fold : *listed) {
      if (fold.is_string()) folds.push_back(fold.get<std::string>());
    }
  }
  const Json* rule = find_key(*info, "dice_rule");
  doc.paragraph("Every trained configuration and pair ensemble scored on the cross-validation cases of fold(s) " + join(folds) +
                "; the best by mean foreground Dice is " + (chosen.empty() ? std::string("not recorded") : chosen) + ".");
  if (rule != nullptr && rule->is_string()) doc.note(rule->get<std::string>());

  const Json* candidates = find_key(*info, "candidates");
  std::vector<std::string> channels;
  if (candidates != nullptr && candidates->is_object() && !candidates->empty()) {
    if (const Json* dice = find_key(candidates->begin().value(), "dice"); dice != nullptr && dice->is_object()) {
      for (const auto& [channel, value] : dice->items()) channels.push_back(channel);
    }
    std::vector<std::string> header = {"candidate", "cases", "foreground Dice"};
    header.insert(header.end(), channels.begin(), channels.end());
    std::vector<std::vector<HtmlCell>> rows;
    for (const auto& [name, candidate] : candidates->items()) {
      std::vector<HtmlCell> row = {text_cell(name == chosen ? name + " (best)" : name, name == chosen ? "ok" : ""),
                                   value_cell(find_key(candidate, "cases"))};
      const Json* reason = find_key(candidate, "foreground_dice_reason");
      row.push_back(
          value_cell(find_key(candidate, "foreground_dice"), reason != nullptr && reason->is_string() ? reason->get<std::string>() : ""));
      const Json* dice = find_key(candidate, "dice");
      for (const auto& channel : channels)
        row.push_back(value_cell(dice != nullptr ? find_key(*dice, channel) : nullptr, "no defined case"));
      rows.push_back(row);
    }
    doc.subheading("Configurations and ensembles (cross-validation Dice)");
    doc.table(header, rows);
  }
  if (const Json* notes = find_key(*info, "notes"); notes != nullptr && notes->is_array()) {
    for (const auto& note : *notes) {
      if (note.is_string()) doc.note(note.get<std::string>());
    }
  }
  if (const Json* postprocessing = find_key(*info, "postprocessing"); postprocessing != nullptr && postprocessing->is_object()) {
    std::vector<std::vector<HtmlCell>> rows;
    if (const Json* trials = find_key(*postprocessing, "trials"); trials != nullptr && trials->is_array()) {
      for (const auto& trial : *trials) {
        const Json* step = find_key(trial, "step");
        const Json* kept = find_key(trial, "kept");
        const Json* why = find_key(trial, "why");
        const bool is_kept = kept != nullptr && kept->is_boolean() && kept->get<bool>();
        rows.push_back({text_cell(step != nullptr && step->is_string() ? step->get<std::string>() : "?"),
                        value_cell(find_key(trial, "dice_before"), "no defined case"),
                        value_cell(find_key(trial, "dice_after"), "no defined case"),
                        text_cell(is_kept ? "kept" : "dropped", is_kept ? "ok" : ""),
                        text_cell(why != nullptr && why->is_string() ? why->get<std::string>() : "")});
      }
    }
    doc.subheading("Postprocessing of " + (chosen.empty() ? std::string("the best candidate") : chosen) +
                   " (each step kept only if it raises the Dice)");
    doc.table({"step", "Dice before", "Dice after", "decision", "why"}, rows);
  }
  if (const Json* instructions = find_key(*info, "instructions"); instructions != nullptr && instructions->is_string()) {
    doc.subheading("Commands to predict with the choice");
    doc.raw("<pre>" + escape_html(instructions->get<std::string>()) + "</pre>");
  }
  doc.end_section();
}

}  // namespace mlseg::report_detail
