#include "mlseg/training/train_log.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/svg_plot.h"
#include "mlseg/core/text_table.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Json optional_number(const std::optional<double>& value) { return value ? Json(*value) : Json(nullptr); }

std::optional<double> read_optional(const Json& json, const char* key) {
  if (!json.contains(key) || json[key].is_null()) return std::nullopt;
  return json[key].get<double>();
}

Json validation_to_json(const ValidationResult& v, const std::optional<double>& ema) {
  Json validation;
  validation["kind"] = v.kind;
  validation["patches"] = v.patches;
  validation["seconds"] = v.seconds;
  validation["mean_dice"] = optional_number(v.mean_dice);
  if (!v.mean_dice) validation["mean_dice_reason"] = "no_channel_has_a_value";
  validation["mean_over_channels"] = v.channels_in_mean;
  validation["ema_mean_dice"] = optional_number(ema);
  Json channels = Json::array();
  for (std::size_t c = 0; c < v.channel_names.size(); ++c) {
    Json channel;
    channel["name"] = v.channel_names[c];
    channel["tp"] = v.counts[c].tp;
    channel["fp"] = v.counts[c].fp;
    channel["fn"] = v.counts[c].fn;
    if (v.dice[c].defined()) {
      channel["dice"] = v.dice[c].value();
    } else {
      channel["dice"] = nullptr;
      channel["reason"] = to_string(v.dice[c].reason());
    }
    channel["patches_with_channel"] = v.patches_with_channel[c];
    channels.push_back(channel);
  }
  validation["channels"] = channels;
  return validation;
}

ValidationResult validation_from_json(const Json& v, const Json& epoch) {
  ValidationResult result;
  result.kind = v.value("kind", std::string("patches"));
  result.patches = v.value("patches", std::int64_t{0});
  result.seconds = v.value("seconds", 0.0);
  result.mean_dice = read_optional(v, "mean_dice");
  result.channels_in_mean = v.value("mean_over_channels", 0);
  result.loss = read_optional(epoch, "val_loss");
  for (const Json& channel : v.at("channels")) {
    result.channel_names.push_back(channel.at("name").get<std::string>());
    ConfusionCounts counts;
    counts.tp = channel.value("tp", std::int64_t{0});
    counts.fp = channel.value("fp", std::int64_t{0});
    counts.fn = channel.value("fn", std::int64_t{0});
    result.counts.push_back(counts);
    if (channel.contains("dice") && !channel["dice"].is_null()) {
      result.dice.push_back(MetricValue::of(channel["dice"].get<double>()));
    } else {
      const auto reason = parse_undefined_reason(channel.value("reason", std::string("both_empty")));
      result.dice.push_back(MetricValue::undefined(reason.value_or(UndefinedReason::both_empty)));
    }
    result.patches_with_channel.push_back(channel.value("patches_with_channel", std::int64_t{0}));
  }
  return result;
}

}  // namespace

Json epoch_record_to_json(const EpochRecord& r) {
  Json json;
  json["epoch"] = r.epoch;
  json["train_loss"] = optional_number(r.train_loss);
  if (!r.train_loss) json["train_loss_reason"] = "no_finite_step";
  if (r.validation) {
    json["val_loss"] = optional_number(r.validation->loss);
    if (!r.validation->loss) json["val_loss_reason"] = "no_finite_batch";
  } else {
    json["val_loss"] = nullptr;
    json["val_loss_reason"] = "not_validated_this_epoch";
  }
  json["lr"] = r.lr;
  json["epoch_seconds"] = r.epoch_seconds;
  json["train_seconds"] = r.train_seconds;
  json["data_wait_seconds"] = r.data_wait_seconds;
  json["remedies"] = r.remedies;
  json["iterations"] = r.iterations;
  json["skipped_steps"] = r.skipped_steps;
  if (r.validation) {
    json["validation"] = validation_to_json(*r.validation, r.ema_mean_dice);
  } else {
    json["validation"] = nullptr;
  }
  if (r.full_validation) json["validation_full"] = validation_to_json(*r.full_validation, std::nullopt);
  json["ema_mean_dice"] = optional_number(r.ema_mean_dice);
  json["best"] = r.best;
  Json coverage;
  coverage["patches"] = r.train_patches;
  Json per_channel = Json::object();
  for (std::size_t c = 0; c < r.channel_names.size() && c < r.train_patches_with_channel.size(); ++c) {
    per_channel[r.channel_names[c]] = r.train_patches_with_channel[c];
  }
  coverage["patches_with_channel"] = per_channel;
  json["train_coverage"] = coverage;
  return json;
}

EpochRecord epoch_record_from_json(const Json& json) {
  EpochRecord r;
  try {
    r.epoch = json.at("epoch").get<std::int64_t>();
    r.train_loss = read_optional(json, "train_loss");
    r.lr = json.at("lr").get<double>();
    r.epoch_seconds = json.value("epoch_seconds", 0.0);
    r.train_seconds = json.value("train_seconds", 0.0);
    r.data_wait_seconds = json.value("data_wait_seconds", 0.0);
    r.remedies = json.value("remedies", std::vector<std::string>{});
    r.iterations = json.value("iterations", std::int64_t{0});
    r.skipped_steps = json.value("skipped_steps", std::int64_t{0});
    r.ema_mean_dice = read_optional(json, "ema_mean_dice");
    r.best = json.value("best", false);
    if (json.contains("validation") && json["validation"].is_object()) {
      r.validation = validation_from_json(json["validation"], json);
      r.channel_names = r.validation->channel_names;
    }
    if (json.contains("validation_full") && json["validation_full"].is_object()) {
      r.full_validation = validation_from_json(json["validation_full"], Json::object());
    }
    if (json.contains("train_coverage") && json["train_coverage"].is_object()) {
      r.train_patches = json["train_coverage"].value("patches", std::int64_t{0});
      const Json& per_channel = json["train_coverage"]["patches_with_channel"];
      if (r.channel_names.empty()) {
        for (const auto& item : per_channel.items()) r.channel_names.push_back(item.key());
      }
      for (const auto& name : r.channel_names) r.train_patches_with_channel.push_back(per_channel.value(name, std::int64_t{0}));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("a log.jsonl line is malformed (") + e.what() + ")",
                "delete log.jsonl (it is rewritten from the next epoch) or start the run again");
  }
  return r;
}

std::vector<EpochRecord> read_epoch_records(const std::filesystem::path& log_path) {
  std::vector<EpochRecord> records;
  std::ifstream in(log_path);
  if (!in) return records;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      records.push_back(epoch_record_from_json(Json::parse(line)));
    } catch (const nlohmann::json::exception&) {
      break;  // a line cut short by a crash: the records before it stand
    } catch (const Error& e) {
      throw e.located({log_path.string(), "", ""});
    }
  }
  return records;
}

void write_epoch_records(const std::filesystem::path& log_path, const std::vector<EpochRecord>& records) {
  std::string text;
  for (const EpochRecord& r : records) text += epoch_record_to_json(r).dump() + "\n";
  write_text_file_atomically(log_path, text);
}

void append_epoch_record(const std::filesystem::path& log_path, const EpochRecord& record) {
  std::ofstream out(log_path, std::ios::app);
  if (!out) throw Error("cannot append to the training log", "check write permission", {log_path.string(), "", ""});
  out << epoch_record_to_json(record).dump() << "\n";
  out.flush();
}

std::string format_epoch_lines(const EpochRecord& r, std::int64_t epochs, double eta_seconds) {
  std::ostringstream out;
  out << "epoch " << r.epoch + 1 << "/" << epochs;
  out << "  train loss " << (r.train_loss ? format_fixed(*r.train_loss, 4) : "n/a (no finite step)");
  if (r.validation) {
    const ValidationResult& v = *r.validation;
    out << "  val loss " << (v.loss ? format_fixed(*v.loss, 4) : "n/a (no finite batch)");
    out << "  Dice " << format_mean(v.mean_dice, v.channels_in_mean, static_cast<int>(v.channel_names.size()));
    out << "  EMA " << (r.ema_mean_dice ? format_fixed(*r.ema_mean_dice, 4) : "n/a (no finite mean yet)");
    if (r.best) out << " *best*";
  }
  out << "  lr " << format_fixed(r.lr, 5) << "  " << format_duration(r.epoch_seconds);
  if (r.skipped_steps > 0) out << "  skipped " << r.skipped_steps << " non-finite step(s)";
  if (eta_seconds > 0) out << "  ETA " << format_duration(eta_seconds);
  out << "\n";
  if (r.validation) {
    const ValidationResult& v = *r.validation;
    out << "   ";
    if (v.kind == "full_cases") out << " whole cases:";
    for (std::size_t c = 0; c < v.channel_names.size(); ++c) out << " " << v.channel_names[c] << " " << v.dice[c].format(3);
    out << "\n";
  }
  if (r.full_validation) {
    const ValidationResult& v = *r.full_validation;
    out << "    whole cases: Dice " << format_mean(v.mean_dice, v.channels_in_mean, static_cast<int>(v.channel_names.size())) << ":";
    for (std::size_t c = 0; c < v.channel_names.size(); ++c) out << " " << v.channel_names[c] << " " << v.dice[c].format(3);
    out << "\n";
  }
  return out.str();
}

std::string progress_svg(const std::vector<EpochRecord>& records) {
  LineChart losses;
  losses.title = "Losses";
  losses.x_label = "epoch";
  losses.y_label = "loss";
  Series train{"train loss", {}, {}, "", false}, val{"validation loss", {}, {}, "", false};
  LineChart dice;
  dice.title = "Validation Dice (fixed patch set)";
  dice.x_label = "epoch";
  dice.y_label = "Dice";
  dice.y_min = 0;
  dice.y_max = 1;
  Series mean{"mean Dice", {}, {}, "#000000", false}, ema{"EMA (checkpoint_best)", {}, {}, "#000000", true};
  std::vector<Series> channels;
  LineChart lr;
  lr.title = "Learning rate";
  lr.x_label = "epoch";
  lr.y_label = "lr";
  lr.height = 240;
  Series lr_series{"lr", {}, {}, "", false};
  for (const EpochRecord& r : records) {
    const double x = static_cast<double>(r.epoch + 1);
    train.x.push_back(x);
    train.y.push_back(r.train_loss.value_or(kNaN));
    lr_series.x.push_back(x);
    lr_series.y.push_back(r.lr);
    if (!r.validation) continue;
    const ValidationResult& v = *r.validation;
    val.x.push_back(x);
    val.y.push_back(v.loss.value_or(kNaN));
    mean.x.push_back(x);
    mean.y.push_back(v.mean_dice.value_or(kNaN));
    ema.x.push_back(x);
    ema.y.push_back(r.ema_mean_dice.value_or(kNaN));
    if (channels.size() < v.channel_names.size()) {
      for (std::size_t c = channels.size(); c < v.channel_names.size(); ++c) {
        channels.push_back(Series{v.channel_names[c], {}, {}, "", false});
      }
    }
    for (std::size_t c = 0; c < v.channel_names.size(); ++c) {
      channels[c].x.push_back(x);
      channels[c].y.push_back(v.dice[c].defined() ? v.dice[c].value() : kNaN);
    }
  }
  losses.series = {train, val};
  dice.series = channels;
  dice.series.push_back(mean);
  dice.series.push_back(ema);
  lr.series = {lr_series};
  const std::string parts[] = {line_chart_svg(losses), line_chart_svg(dice), line_chart_svg(lr)};
  const int heights[] = {losses.height, dice.height, lr.height};
  const int width = std::max({losses.width, dice.width, lr.width});
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
      << heights[0] + heights[1] + heights[2] << "\">\n";
  int y = 0;
  for (int i = 0; i < 3; ++i) {
    out << "<g transform=\"translate(0," << y << ")\">\n" << parts[i] << "\n</g>\n";
    y += heights[i];
  }
  out << "</svg>\n";
  return out.str();
}

}  // namespace mlseg
