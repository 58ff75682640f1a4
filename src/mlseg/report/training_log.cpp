#include "mlseg/report/training_log.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mlseg/core/error.h"

namespace mlseg {

namespace {

using Json = nlohmann::ordered_json;  // keeps the log's channel order

// `key` of `object`, with the reason from "<key>_reason", "reasons": {key: ...} or "reason".
LoggedValue logged_value(const Json& object, const std::string& key) {
  LoggedValue out;
  const auto found = object.find(key);
  if (found != object.end() && found->is_number()) {
    const double value = found->get<double>();
    if (std::isfinite(value)) out.value = value;
  }
  if (out.value) return out;
  if (const auto reason = object.find(key + "_reason"); reason != object.end() && reason->is_string()) {
    out.reason = reason->get<std::string>();
  } else if (const auto reasons = object.find("reasons");
             reasons != object.end() && reasons->is_object() && reasons->contains(key) && (*reasons)[key].is_string()) {
    out.reason = (*reasons)[key].get<std::string>();
  } else if (const auto single = object.find("reason"); single != object.end() && single->is_string()) {
    out.reason = single->get<std::string>();
  } else if (found == object.end()) {
    out.reason = "not logged";
  }
  return out;
}

std::optional<std::int64_t> logged_count(const Json& object, const std::string& key) {
  const auto found = object.find(key);
  if (found == object.end() || !found->is_number()) return std::nullopt;
  const double value = found->get<double>();
  if (!std::isfinite(value)) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(value));
}

EpochLog parse_epoch(const Json& line, std::int64_t fallback_epoch) {
  EpochLog epoch;
  epoch.epoch = logged_count(line, "epoch").value_or(fallback_epoch);
  epoch.train_loss = logged_value(line, "train_loss");
  epoch.val_loss = logged_value(line, "val_loss");
  epoch.lr = logged_value(line, "lr");
  epoch.epoch_seconds = logged_value(line, "epoch_seconds");
  epoch.iterations = logged_count(line, "iterations");
  epoch.skipped_steps = logged_count(line, "skipped_steps");
  epoch.best = line.value("best", false) == true;
  const auto validation = line.find("validation");
  if (validation == line.end() || !validation->is_object()) {
    // Training validates every few epochs; the others log "validation": null.
    epoch.mean_dice.reason = "not_validated_this_epoch";
    epoch.ema_mean_dice = logged_value(line, "ema_mean_dice");
  } else {
    epoch.has_validation = true;
    epoch.validation_patches = logged_count(*validation, "patches");
    epoch.mean_dice = logged_value(*validation, "mean_dice");
    epoch.ema_mean_dice = logged_value(*validation, "ema_mean_dice");
    if (!epoch.ema_mean_dice.value && !validation->contains("ema_mean_dice")) epoch.ema_mean_dice = logged_value(line, "ema_mean_dice");
    epoch.mean_over_channels = logged_count(*validation, "mean_over_channels");
    const auto channels = validation->find("channels");
    if (channels != validation->end() && channels->is_array()) {
      for (const Json& channel : *channels) {
        if (!channel.is_object()) continue;
        ChannelEpochLog entry;
        entry.name = channel.value("name", std::string("channel ") + std::to_string(epoch.channels.size()));
        entry.dice = logged_value(channel, "dice");
        entry.tp = logged_count(channel, "tp").value_or(0);
        entry.fp = logged_count(channel, "fp").value_or(0);
        entry.fn = logged_count(channel, "fn").value_or(0);
        entry.patches_with_channel = logged_count(channel, "patches_with_channel");
        epoch.channels.push_back(std::move(entry));
      }
    }
  }
  const auto remedies = line.find("remedies");
  if (remedies != line.end() && remedies->is_array()) {
    for (const auto& r : *remedies) {
      if (r.is_string()) epoch.remedies.push_back(r.get<std::string>());
    }
  }
  const auto coverage = line.find("train_coverage");
  if (coverage != line.end() && coverage->is_object()) {
    epoch.train_patches = logged_count(*coverage, "patches");
    const auto per_channel = coverage->find("patches_with_channel");
    if (per_channel != coverage->end() && per_channel->is_object()) {
      for (const auto& [name, count] : per_channel->items()) {
        if (count.is_number()) epoch.train_patches_with_channel.emplace_back(name, count.get<std::int64_t>());
      }
    }
  }
  return epoch;
}

}  // namespace

TrainingLog read_training_log(const std::filesystem::path& path) {
  std::ifstream stream(path);
  if (!stream) {
    throw Error("cannot open the training log", "check that the file is readable", {path.string(), "", ""});
  }
  TrainingLog log;
  log.file = path;
  std::string text;
  std::int64_t line_number = 0;
  while (std::getline(stream, text)) {
    ++line_number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json line = Json::parse(text, nullptr, false);
    if (line.is_discarded() || !line.is_object()) {
      if (log.unreadable_lines++ == 0) log.first_problem = "line " + std::to_string(line_number) + " is not a JSON object";
      continue;
    }
    log.epochs.push_back(parse_epoch(line, static_cast<std::int64_t>(log.epochs.size())));
  }
  return log;
}

}  // namespace mlseg
