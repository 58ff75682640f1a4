// Training curves from each fold's log.jsonl: losses, per-channel validation Dice, learning rate,
// the validation coverage of every epoch, and a table of the last epochs.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "mlseg/core/error.h"
#include "mlseg/core/svg_plot.h"
#include "mlseg/report/channel_colour.h"
#include "mlseg/report/report_sections.h"
#include "mlseg/report/training_log.h"

namespace mlseg::report_detail {

namespace fs = std::filesystem;

namespace {

constexpr int kChartWidthPx = 1000;
constexpr int kChartHeightPx = 320;
const std::string kMeanColour = "#000000";

double value_or_nan(const LoggedValue& value) { return value.value ? *value.value : std::nan(""); }

HtmlCell logged_cell(const LoggedValue& value) {
  if (value.value) return number_cell(*value.value);
  return text_cell(undefined_text(value.reason), "na");
}

// `validated_only`: leave out epochs without validation (training validates every few epochs),
// so that a validation curve joins its points instead of breaking at every skipped epoch.
template <typename Get>
Series series_of(const TrainingLog& log, const std::string& name, bool validated_only, Get get) {
  Series series;
  series.name = name;
  for (const EpochLog& epoch : log.epochs) {
    if (validated_only && !epoch.has_validation) continue;
    series.x.push_back(static_cast<double>(epoch.epoch));
    series.y.push_back(get(epoch));
  }
  return series;
}

// Channel names in the order of the inputs, then any the log adds.
std::vector<std::string> logged_channels(const TrainingLog& log, const std::vector<std::string>& known) {
  std::vector<std::string> names = known;
  for (const EpochLog& epoch : log.epochs) {
    for (const ChannelEpochLog& channel : epoch.channels) {
      if (std::find(names.begin(), names.end(), channel.name) == names.end()) names.push_back(channel.name);
    }
  }
  return names;
}

const ChannelEpochLog* find_channel(const EpochLog& epoch, const std::string& name) {
  for (const ChannelEpochLog& channel : epoch.channels) {
    if (channel.name == name) return &channel;
  }
  return nullptr;
}

void add_fold(const ReportInputs& inputs, const std::string& fold, HtmlDocument& doc) {
  const fs::path fold_dir = inputs.layout.fold_dir(fold);
  doc.subheading("Fold " + fold);
  const fs::path log_file = fold_dir / "log.jsonl";
  if (!fs::is_regular_file(log_file)) {
    doc.missing("training log", log_file.string(), inputs.command("train", "-c " + inputs.layout.configuration + " -f " + fold));
    return;
  }
  TrainingLog log;
  try {
    log = read_training_log(log_file);
  } catch (const std::exception& error) {
    doc.warning("training log unreadable: " + error_message(error));
    return;
  }
  if (log.unreadable_lines > 0) {
    doc.warning(std::to_string(log.unreadable_lines) + " line(s) of " + log_file.string() +
                " are not JSON (first: " + log.first_problem + "); they are left out.");
  }
  if (log.epochs.empty()) {
    doc.note("The training log " + log_file.string() + " has no epochs yet.");
    return;
  }

  // Facts: epochs, best epoch, time.
  const EpochLog* best = nullptr;
  double seconds = 0;
  std::int64_t skipped = 0;
  for (const EpochLog& epoch : log.epochs) {
    if (epoch.best) best = &epoch;
    if (epoch.epoch_seconds.value) seconds += *epoch.epoch_seconds.value;
    skipped += epoch.skipped_steps.value_or(0);
  }
  std::vector<std::pair<std::string, std::string>> facts = {
      {"epochs logged", std::to_string(log.epochs.size()) + " (last: " + std::to_string(log.epochs.back().epoch) + ")"},
      {"training time", format_report_number(std::round(seconds)) + " s"}};
  if (best != nullptr) {
    facts.emplace_back("best epoch", std::to_string(best->epoch) + ": EMA mean Dice " + logged_cell(best->ema_mean_dice).text +
                                         ", mean Dice " + logged_cell(best->mean_dice).text);
  } else {
    facts.emplace_back("best epoch", "none marked yet");
  }
  if (skipped > 0) facts.emplace_back("skipped steps (non-finite loss)", std::to_string(skipped));
  std::string remedies;
  for (const std::string& line : log.epochs.back().remedies) remedies += (remedies.empty() ? "" : "; ") + line;
  facts.emplace_back("remedies for rare channels",
                     remedies.empty() ? "none: nnU-Net's uniform channel choice, no loss weights" : remedies);
  if (fs::is_regular_file(fold_dir / "progress.svg")) facts.emplace_back("training's own chart", (fold_dir / "progress.svg").string());
  doc.facts(facts);

  const std::vector<std::string> channels = logged_channels(log, inputs.channel_names);
  const auto chart = [&](const std::string& title, const std::string& y_label, int height) {
    LineChart out;
    out.title = title + " (fold " + fold + ")";
    out.x_label = "epoch";
    out.y_label = y_label;
    out.width = kChartWidthPx;
    out.height = height;
    return out;
  };
  // One series per channel, coloured as everywhere in the report.
  const auto per_channel = [&](LineChart& target, bool validated_only, auto value_of_channel) {
    for (std::size_t c = 0; c < channels.size(); ++c) {
      Series series = series_of(log, channels[c], validated_only,
                                [&](const EpochLog& e) { return value_of_channel(e, channels[c]); });
      series.colour = channel_colour(c);
      target.series.push_back(std::move(series));
    }
  };
  const auto black = [](Series series, bool dashed) {
    series.colour = kMeanColour;
    series.dashed = dashed;
    return series;
  };
  std::string charts;

  LineChart losses = chart("Losses", "loss", kChartHeightPx);
  losses.series.push_back(series_of(log, "training loss", false, [](const EpochLog& e) { return value_or_nan(e.train_loss); }));
  losses.series.push_back(series_of(log, "validation loss", true, [](const EpochLog& e) { return value_or_nan(e.val_loss); }));
  charts += line_chart_svg(losses);

  LineChart dice = chart("Validation Dice per channel", "Dice", kChartHeightPx + 40);
  dice.y_min = 0;
  dice.y_max = 1;
  per_channel(dice, true, [](const EpochLog& e, const std::string& name) {
    const ChannelEpochLog* channel = find_channel(e, name);
    return channel != nullptr ? value_or_nan(channel->dice) : std::nan("");
  });
  dice.series.push_back(black(series_of(log, "mean over channels", true, [](const EpochLog& e) { return value_or_nan(e.mean_dice); }), false));
  dice.series.push_back(black(series_of(log, "EMA of the mean", true, [](const EpochLog& e) { return value_or_nan(e.ema_mean_dice); }), true));
  charts += line_chart_svg(dice);

  LineChart lr = chart("Learning rate", "learning rate", 240);
  lr.log_y = true;
  lr.series.push_back(series_of(log, "learning rate", false, [](const EpochLog& e) { return value_or_nan(e.lr); }));
  charts += line_chart_svg(lr);

  LineChart coverage = chart("Validation coverage: patches containing each channel", "validation patches", kChartHeightPx);
  coverage.y_min = 0;
  per_channel(coverage, true, [](const EpochLog& e, const std::string& name) {
    const ChannelEpochLog* channel = find_channel(e, name);
    return channel != nullptr && channel->patches_with_channel ? static_cast<double>(*channel->patches_with_channel) : std::nan("");
  });
  coverage.series.push_back(black(series_of(log, "all validation patches", true, [](const EpochLog& e) {
    return e.validation_patches ? static_cast<double>(*e.validation_patches) : std::nan("");
  }), true));
  charts += line_chart_svg(coverage);

  const bool has_train_coverage = std::any_of(log.epochs.begin(), log.epochs.end(),
                                              [](const EpochLog& e) { return e.train_patches.has_value(); });
  if (has_train_coverage) {
    LineChart train = chart("Training coverage: patches containing each channel", "training patches", kChartHeightPx);
    train.y_min = 0;
    per_channel(train, false, [](const EpochLog& e, const std::string& name) {
      for (const auto& [channel, count] : e.train_patches_with_channel) {
        if (channel == name) return static_cast<double>(count);
      }
      return std::nan("");
    });
    train.series.push_back(black(series_of(log, "all training patches", false, [](const EpochLog& e) {
      return e.train_patches ? static_cast<double>(*e.train_patches) : std::nan("");
    }), true));
    charts += line_chart_svg(train);
  }
  doc.raw("<div class=\"charts\">" + charts + "</div>");

  // Table: the last epochs, plus the best one when it is older.
  std::vector<const EpochLog*> shown;
  const std::size_t first = log.epochs.size() > static_cast<std::size_t>(std::max(1, inputs.options.max_epoch_rows))
                                ? log.epochs.size() - static_cast<std::size_t>(std::max(1, inputs.options.max_epoch_rows))
                                : 0;
  if (best != nullptr && best < &log.epochs[first]) shown.push_back(best);
  for (std::size_t i = first; i < log.epochs.size(); ++i) shown.push_back(&log.epochs[i]);
  std::vector<std::vector<HtmlCell>> rows;
  for (const EpochLog* epoch : shown) {
    std::string covered = epoch->mean_over_channels ? std::to_string(*epoch->mean_over_channels) + " / " +
                                                          std::to_string(epoch->channels.empty() ? channels.size() : epoch->channels.size())
                                                    : undefined_text("not logged");
    std::vector<std::string> undefined;
    for (const ChannelEpochLog& channel : epoch->channels) {
      if (!channel.dice.value) undefined.push_back(channel.name + ": " + undefined_text(channel.dice.reason));
    }
    rows.push_back({number_cell(static_cast<double>(epoch->epoch)), logged_cell(epoch->train_loss), logged_cell(epoch->val_loss),
                    logged_cell(epoch->mean_dice), text_cell(covered, epoch->mean_over_channels ? "num" : "na"),
                    logged_cell(epoch->ema_mean_dice), logged_cell(epoch->lr), logged_cell(epoch->epoch_seconds),
                    text_cell(undefined.empty() ? "-" : join(undefined, "; "), undefined.empty() ? "" : "na"),
                    text_cell(epoch->best ? "best" : "", epoch->best ? "ok" : "")});
  }
  doc.table({"epoch", "training loss", "validation loss", "mean Dice", "channels in mean", "EMA mean Dice", "learning rate",
             "seconds", "channels without Dice", "best"},
            rows);
  if (first > 0) doc.note("Showing the last " + std::to_string(log.epochs.size() - first) + " of " +
                          std::to_string(log.epochs.size()) + " epochs (and the best epoch); the charts show all.");
}

}  // namespace

void add_training_section(const ReportInputs& inputs, HtmlDocument& doc) {
  doc.begin_section("training", "Training curves");
  const RunLayout& layout = inputs.layout;
  if (layout.configuration.empty() || layout.folds.empty()) {
    const std::string where = (layout.dataset_work_dir / "results" /
                               (layout.configuration.empty() ? std::string("<config>") : layout.configuration))
                                  .string();
    doc.missing("training results", where,
                inputs.command("train", "-c " + (layout.configuration.empty() ? std::string("3d_fullres") : layout.configuration) + " -f 0"));
  }
  for (const std::string& fold : layout.folds) add_fold(inputs, fold, doc);
  doc.end_section();
}

}  // namespace mlseg::report_detail
