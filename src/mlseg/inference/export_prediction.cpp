#include "mlseg/inference/export_prediction.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <system_error>

#include "mlseg/core/error.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/npy.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// collapse_to_label_map decodes this many bytes of channel masks at a time.
constexpr std::int64_t kDecodeChunkBytes = std::int64_t{64} << 20;

torch::ScalarType narrowest_label_dtype(std::int64_t max_value) {
  if (max_value <= 255) return torch::kUInt8;
  if (max_value <= 32767) return torch::kInt16;
  if (max_value <= 2147483647) return torch::kInt32;
  return torch::kInt64;
}

std::string dataset_file_ending(const ModelDescription& model) {
  return model.dataset_json.value("file_ending", std::string(".nii.gz"));
}

void write_volume(const torch::Tensor& data, const Geometry& geometry, const fs::path& path, ExportResult& result) {
  Image image;
  image.data = data;
  image.geometry = geometry;
  write_image(image, path);
  result.files.push_back(path);
}

Json synthetic_labels(const ModelDescription& model, bool bits) {
  Json labels = Json::object();
  labels["background"] = 0;
  for (std::size_t c = 0; c < model.channel_names.size(); ++c) {
    if (bits) {
      labels[model.channel_names[c]] = std::uint64_t{1} << c;
    } else {
      labels[model.channel_names[c]] = static_cast<std::int64_t>(c) + 1;
    }
  }
  return labels;
}

/// uint8 [1, Z, Y, X]: 1 where channel c's bit is set (one channel of decode_channels).
torch::Tensor decode_channel(const CodeVolume& code, int c) {
  const CodeLayout layout = code_layout(code.num_channels);
  const int word = c / layout.bits_per_word, bit = c % layout.bits_per_word;
  // The bit as a value of the word's type: the top bit of a signed word is the type's minimum.
  const bool top_of_signed = bit == layout.bits_per_word - 1 && layout.dtype != torch::kUInt8;
  const std::int64_t mask = !top_of_signed ? (std::int64_t{1} << bit)
                            : bit == 63    ? std::numeric_limits<std::int64_t>::min()
                                           : -(std::int64_t{1} << bit);
  const torch::Tensor words = code.words.slice(0, word, word + 1);
  return words.bitwise_and(mask).ne(0).to(torch::kUInt8);
}

bool dataset_is_label_map(const ModelDescription& model) {
  return model.dataset_json.contains("labels") && model.dataset_json.value("label_format", std::string("label_map")) == "label_map";
}

}  // namespace

std::string to_string(PredictionFormat format) {
  switch (format) {
    case PredictionFormat::bitmask: return "bitmask";
    case PredictionFormat::multihot4d: return "multihot4d";
    case PredictionFormat::per_channel: return "per-channel";
    case PredictionFormat::labelmap: return "labelmap";
  }
  return "?";
}

std::optional<PredictionFormat> parse_prediction_format(const std::string& text) {
  for (auto format : {PredictionFormat::bitmask, PredictionFormat::multihot4d, PredictionFormat::per_channel, PredictionFormat::labelmap}) {
    if (text == to_string(format)) return format;
  }
  if (text == "per_channel") return PredictionFormat::per_channel;
  return std::nullopt;
}

PredictionFormat prediction_format_flag(const std::string& text) {
  const auto format = parse_prediction_format(text);
  if (!format) throw Error("unknown --format '" + text + "'", "use bitmask, multihot4d, per-channel or labelmap");
  return *format;
}

PredictionFormat default_prediction_format(const LabelEncoding& encoding) {
  if (encoding.default_export() == DefaultExport::label_map) return PredictionFormat::labelmap;
  return encoding.num_channels() <= kMaxBitmaskChannels ? PredictionFormat::bitmask : PredictionFormat::multihot4d;
}

std::string prediction_file_ending(const ModelDescription& model, const ExportOptions& options) {
  std::string ending = options.file_ending.empty() ? dataset_file_ending(model) : options.file_ending;
  const bool wide_bitmask = options.format == PredictionFormat::bitmask && model.channel_names.size() > 8;
  if ((options.format == PredictionFormat::multihot4d || wide_bitmask) && is_2d_image_format(ending)) ending = ".nii.gz";
  return ending;
}

LabelSpec labelmap_spec(const ModelDescription& model) {
  if (dataset_is_label_map(model)) {
    LabelSpec spec = parse_label_spec(model.dataset_json, "the model's dataset.json");
    std::vector<std::string> names;
    for (const auto& channel : spec.channels) names.push_back(channel.name);
    if (names == model.channel_names) return spec;
  }
  Json json;
  json["labels"] = synthetic_labels(model, false);
  return parse_label_spec(json, "labelmap export");
}

Json prediction_dataset_json(const ModelDescription& model, const ExportOptions& options) {
  Json json;
  json["name"] = model.dataset_json.value("name", std::string("predictions"));
  json["description"] = "mlseg predict output (" + to_string(options.format) + ")";
  json["channel_names"] = model.dataset_json.value("channel_names", Json::object());
  switch (options.format) {
    case PredictionFormat::bitmask:
      json["label_format"] = "bitmask";
      json["labels"] = synthetic_labels(model, true);
      break;
    case PredictionFormat::multihot4d:
      json["label_format"] = "multihot4d";
      json["labels"] = synthetic_labels(model, false);
      break;
    case PredictionFormat::per_channel:
      json["label_format"] = "channel_masks";
      json["labels"] = synthetic_labels(model, false);
      break;
    case PredictionFormat::labelmap:
      if (dataset_is_label_map(model) && labelmap_spec(model).channels.size() == model.channel_names.size()) {
        json["labels"] = model.dataset_json["labels"];
        if (model.dataset_json.contains("regions_class_order")) json["regions_class_order"] = model.dataset_json["regions_class_order"];
        if (model.dataset_json.contains("ignore_label")) json["ignore_label"] = model.dataset_json["ignore_label"];
      } else {
        json["labels"] = synthetic_labels(model, false);
      }
      json["label_format"] = "label_map";
      break;
  }
  json["file_ending"] = prediction_file_ending(model, options);
  json["channel_order"] = model.channel_names;
  return json;
}

fs::path prediction_output_path(const fs::path& output_dir, const std::string& case_id, const ModelDescription& model,
                                const ExportOptions& options) {
  if (options.format == PredictionFormat::per_channel) return output_dir / case_id;
  return output_dir / (case_id + prediction_file_ending(model, options));
}

torch::Tensor collapse_to_label_map(const CodeVolume& code, const LabelSpec& spec, std::int64_t* voxels_lost) {
  const int channels = spec.num_channels();
  if (code.num_channels != channels) throw Error("the prediction's channels differ from the label definition's", "check the model");
  std::vector<std::int64_t> value_of(static_cast<std::size_t>(channels));
  for (int c = 0; c < channels; ++c) {
    if (spec.regions_class_order.size() == static_cast<std::size_t>(channels)) {
      value_of[c] = spec.regions_class_order[c];
    } else if (!spec.channels[c].raw_values.empty()) {
      value_of[c] = spec.channels[c].raw_values.front();
    } else {
      value_of[c] = c + 1;
    }
  }
  // Decoded a few z rows at a time: all channels' masks of a whole-body CT would take C bytes a voxel.
  const auto shape = code.shape_zyx();
  torch::Tensor label = torch::zeros({1, shape[0], shape[1], shape[2]}, torch::kLong);
  const std::int64_t rows = std::max<std::int64_t>(1, kDecodeChunkBytes / std::max<std::int64_t>(1, channels * shape[1] * shape[2]));
  LabelSpec plain = spec;
  plain.ignore_value.reset();
  std::int64_t lost = 0;
  for (std::int64_t z = 0; z < shape[0]; z += rows) {
    const std::int64_t end = std::min(shape[0], z + rows);
    const CodeVolume part{code.words.slice(1, z, end).contiguous(), code.num_channels};
    const torch::Tensor masks = decode_channels(part);  // [C, rows, Y, X] uint8
    torch::Tensor part_label = label.slice(1, z, end);
    for (int c = 0; c < channels; ++c) part_label.masked_fill_(masks.slice(0, c, c + 1).to(torch::kBool), value_of[c]);
    if (voxels_lost != nullptr) {
      const torch::Tensor back_masks = decode_channels(encode_label_map(part_label.contiguous(), plain));
      lost += (back_masks != masks).any(0).sum().item<std::int64_t>();
    }
  }
  if (voxels_lost != nullptr) *voxels_lost = lost;
  return label;
}

ExportResult export_prediction(const PredictedCase& prediction, const fs::path& output_dir, const ModelDescription& model,
                               const ExportOptions& options) {
  ExportResult result;
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  const std::string ending = prediction_file_ending(model, options);
  const int channels = prediction.code.num_channels;
  const fs::path target = prediction_output_path(output_dir, prediction.case_id, model, options);
  // Probabilities first: the main output's presence then means the case is complete (--continue).
  if (options.save_probabilities && prediction.probabilities.defined()) {
    if (options.probabilities_format == ProbabilitiesFormat::npy) {
      const fs::path path = output_dir / (prediction.case_id + "_probabilities.npy");
      write_npy(path, prediction.probabilities.to(torch::kFloat));
      result.files.push_back(path);
    } else {
      const std::string nifti = is_2d_image_format(ending) ? std::string(".nii.gz") : ending;
      write_volume(prediction.probabilities.to(torch::kFloat), prediction.geometry,
                   output_dir / (prediction.case_id + "_probabilities" + nifti), result);
    }
  }
  switch (options.format) {
    case PredictionFormat::bitmask: {
      if (channels > kMaxBitmaskChannels) {
        throw Error("the bitmask format holds at most 64 channels, the model has " + std::to_string(channels),
                    "use --format multihot4d or --format per-channel");
      }
      torch::Tensor value = prediction.code.words.slice(0, 0, 1).to(torch::kLong);
      if (channels == 64) value = prediction.code.words.slice(0, 0, 1);  // bit 63 kept as the sign bit
      const std::int64_t max_value = channels >= 63 ? std::numeric_limits<std::int64_t>::max() : (std::int64_t{1} << channels) - 1;
      write_volume(value.to(narrowest_label_dtype(max_value)), prediction.geometry, target, result);
      break;
    }
    case PredictionFormat::multihot4d:
      write_volume(decode_channels(prediction.code), prediction.geometry, target, result);
      break;
    case PredictionFormat::per_channel: {
      // Written into a side folder and renamed: the case folder appears complete or not at all.
      const fs::path partial = target.string() + ".partial";
      fs::remove_all(partial, ec);
      fs::create_directories(partial, ec);
      for (int c = 0; c < channels; ++c) {
        const std::string file = prediction.channel_names.at(c) + ending;
        write_volume(decode_channel(prediction.code, c), prediction.geometry, partial / file, result);
        result.files.back() = target / file;
      }
      fs::remove_all(target, ec);
      fs::rename(partial, target);
      break;
    }
    case PredictionFormat::labelmap: {
      const LabelSpec spec = labelmap_spec(model);
      const torch::Tensor label = collapse_to_label_map(prediction.code, spec, &result.voxels_lost_overlap);
      const std::int64_t max_value = label.numel() ? label.max().item<std::int64_t>() : 0;
      write_volume(label.to(narrowest_label_dtype(max_value)), prediction.geometry, target, result);
      break;
    }
  }
  return result;
}

}  // namespace mlseg
