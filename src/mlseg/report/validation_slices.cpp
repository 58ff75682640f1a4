#include "mlseg/report/validation_slices.h"

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "mlseg/core/error.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/report/channel_colour.h"

namespace mlseg {

namespace fs = std::filesystem;

namespace {

constexpr double kPredictionAlpha = 0.4;
constexpr int kOutlineWidthPx = 2;
constexpr double kWindowLowPercentile = 0.5, kWindowHighPercentile = 99.5;

struct Overlay {
  torch::Tensor reference;   // [Y, X] uint8
  torch::Tensor prediction;  // [Y, X] uint8
  std::array<std::uint8_t, 3> rgb{};
};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Grey values from the slice's own 0.5-99.5 percentile window (robust to a few hot voxels).
std::pair<double, double> intensity_window(const torch::Tensor& slice) {
  torch::Tensor values = slice.flatten();
  values = values.masked_select(torch::isfinite(values));
  if (values.numel() == 0) return {0.0, 1.0};
  const torch::Tensor sorted = std::get<0>(values.sort());
  const auto at = [&](double percentile) {
    const auto index = static_cast<std::int64_t>(std::llround(percentile / 100.0 * static_cast<double>(sorted.numel() - 1)));
    return sorted[index].item<double>();
  };
  double low = at(kWindowLowPercentile), high = at(kWindowHighPercentile);
  if (!(high > low)) high = low + 1;
  return {low, high};
}

// The slice scaled so that its longest physical side is `longest_px`, nearest-neighbour.
PixelImage render_slice(const torch::Tensor& image_slice, const std::vector<Overlay>& overlays, double spacing_y_mm,
                        double spacing_x_mm, int longest_px) {
  const torch::Tensor image = image_slice.to(torch::kFloat32).contiguous();
  const std::int64_t rows = image.size(0), columns = image.size(1);
  const double height_mm = static_cast<double>(rows) * spacing_y_mm, width_mm = static_cast<double>(columns) * spacing_x_mm;
  const double scale = longest_px / std::max(height_mm, width_mm);
  const int out_width = std::max(1, static_cast<int>(std::lround(width_mm * scale)));
  const int out_height = std::max(1, static_cast<int>(std::lround(height_mm * scale)));
  std::vector<std::int64_t> source_x(out_width), source_y(out_height);
  for (int x = 0; x < out_width; ++x) source_x[x] = std::min<std::int64_t>(columns - 1, (x * columns) / out_width);
  for (int y = 0; y < out_height; ++y) source_y[y] = std::min<std::int64_t>(rows - 1, (y * rows) / out_height);

  const auto [low, high] = intensity_window(image);
  const float* pixels = image.data_ptr<float>();
  PixelImage out(out_width, out_height, 3);
  for (int y = 0; y < out_height; ++y) {
    for (int x = 0; x < out_width; ++x) {
      const float value = pixels[source_y[y] * columns + source_x[x]];
      const double grey = std::isfinite(value) ? std::clamp((value - low) / (high - low), 0.0, 1.0) * 255.0 : 0.0;
      std::uint8_t* p = out.at(x, y);
      p[0] = p[1] = p[2] = static_cast<std::uint8_t>(std::lround(grey));
    }
  }
  for (const Overlay& overlay : overlays) {
    const torch::Tensor prediction = overlay.prediction.contiguous();
    const std::uint8_t* inside = prediction.data_ptr<std::uint8_t>();
    for (int y = 0; y < out_height; ++y) {
      for (int x = 0; x < out_width; ++x) {
        if (!inside[source_y[y] * columns + source_x[x]]) continue;
        std::uint8_t* p = out.at(x, y);
        for (int c = 0; c < 3; ++c) {
          p[c] = static_cast<std::uint8_t>(std::lround(p[c] * (1 - kPredictionAlpha) + overlay.rgb[c] * kPredictionAlpha));
        }
      }
    }
  }
  // Outlines last, so that every reference stays visible over every fill.
  for (const Overlay& overlay : overlays) {
    const torch::Tensor reference = overlay.reference.contiguous();
    const std::uint8_t* inside = reference.data_ptr<std::uint8_t>();
    const auto in = [&](int x, int y) {
      return x >= 0 && y >= 0 && x < out_width && y < out_height && inside[source_y[y] * columns + source_x[x]] != 0;
    };
    for (int y = 0; y < out_height; ++y) {
      for (int x = 0; x < out_width; ++x) {
        if (!in(x, y)) continue;
        bool edge = false;
        for (int d = 1; d <= kOutlineWidthPx && !edge; ++d) {
          edge = !in(x - d, y) || !in(x + d, y) || !in(x, y - d) || !in(x, y + d);
        }
        if (!edge) continue;
        std::uint8_t* p = out.at(x, y);
        for (int c = 0; c < 3; ++c) p[c] = overlay.rgb[c];
      }
    }
  }
  return out;
}

torch::Tensor slice_mask(const CodeVolume& code, int channel, std::int64_t z) {
  CodeVolume slice{code.words.slice(1, z, z + 1).contiguous(), code.num_channels};
  return channel_mask(slice, channel)[0][0].to(torch::kUInt8);  // [Y, X]
}

std::int64_t busiest_slice(const torch::Tensor& voxels_per_slice) {
  return voxels_per_slice.numel() == 0 ? 0 : voxels_per_slice.argmax().item<std::int64_t>();
}

CaseSlices draw_case(const Dataset& dataset, const CaseFiles& reference_files, const CaseFiles& prediction_files,
                     const ValidationSliceOptions& options) {
  CaseSlices out;
  out.case_id = reference_files.case_id;
  const Image image = read_case_images(dataset, reference_files);
  const CaseLabels reference = read_case_labels(dataset, reference_files);
  const CaseLabels prediction = read_case_labels(dataset, prediction_files);
  if (reference.code.shape_zyx() != prediction.code.shape_zyx() || image.shape_zyx() != reference.code.shape_zyx()) {
    throw Error("prediction " + format_shape(prediction.code.shape_zyx()) + ", reference " +
                    format_shape(reference.code.shape_zyx()) + " and image " + format_shape(image.shape_zyx()) +
                    " differ in shape (z x y x x)",
                "export predictions on the reference grid", {prediction_files.label.string(), out.case_id, ""});
  }
  const int num_channels = dataset.labels.num_channels();
  const double spacing_y = image.geometry.spacing_zyx_mm[1], spacing_x = image.geometry.spacing_zyx_mm[2];
  const torch::Tensor grey = image.data[0];  // first image channel, [Z, Y, X]

  // The all-channel image at the slice with most labelled voxels (reference + prediction).
  const auto labelled = [](const CodeVolume& code) { return (code.words != 0).any(0).sum({1, 2}); };
  const std::int64_t z_all = busiest_slice(labelled(reference.code) + labelled(prediction.code));
  std::vector<Overlay> all;
  for (int c = 0; c < num_channels; ++c) {
    all.push_back({slice_mask(reference.code, c, z_all), slice_mask(prediction.code, c, z_all),
                   colour_bytes(channel_colour(static_cast<std::size_t>(c)))});
  }
  out.panels.push_back({"all channels, z = " + std::to_string(z_all),
                        render_slice(grey[z_all], all, spacing_y, spacing_x, options.composite_px)});

  // Per-channel panels, channels present in the reference first, each at its own busiest slice.
  const std::vector<std::int64_t> reference_voxels = count_channel_voxels(reference.code);
  const std::vector<std::int64_t> prediction_voxels = count_channel_voxels(prediction.code);
  std::vector<int> order, absent;
  for (int c = 0; c < num_channels; ++c) {
    if (reference_voxels[c] > 0) order.push_back(c);
  }
  for (int c = 0; c < num_channels; ++c) {
    if (reference_voxels[c] == 0 && prediction_voxels[c] > 0) order.push_back(c);
    if (reference_voxels[c] == 0 && prediction_voxels[c] == 0) absent.push_back(c);
  }
  const std::size_t shown = std::min(order.size(), static_cast<std::size_t>(std::max(0, options.max_channel_panels)));
  for (std::size_t k = 0; k < shown; ++k) {
    const int c = order[k];
    const torch::Tensor reference_mask = channel_mask(reference.code, c)[0];
    const torch::Tensor prediction_mask = channel_mask(prediction.code, c)[0];
    const std::int64_t z = busiest_slice(reference_mask.sum({1, 2}) + prediction_mask.sum({1, 2}));
    Overlay overlay{reference_mask[z].to(torch::kUInt8), prediction_mask[z].to(torch::kUInt8),
                    colour_bytes(channel_colour(static_cast<std::size_t>(c)))};
    std::string title = dataset.labels.channels[c].name + ", z = " + std::to_string(z);
    if (reference_voxels[c] == 0) title += " (not in reference)";
    out.panels.push_back({title, render_slice(grey[z], {overlay}, spacing_y, spacing_x, options.panel_px)});
  }
  if (shown < order.size()) {
    out.notes.push_back(std::to_string(order.size() - shown) + " more channel(s) present, shown only in the all-channel image");
  }
  if (!absent.empty()) {
    std::string names;
    for (const int c : absent) names += (names.empty() ? "" : ", ") + dataset.labels.channels[c].name;
    out.notes.push_back("absent from reference and prediction: " + names);
  }
  return out;
}

}  // namespace

ValidationSlices render_validation_slices(const fs::path& raw_dataset_dir, const fs::path& validation_dir,
                                          const ValidationSliceOptions& options) {
  const Dataset dataset = load_dataset(raw_dataset_dir);
  ValidationSlices result;
  for (const auto& channel : dataset.labels.channels) result.channel_names.push_back(channel.name);

  std::map<std::string, const CaseFiles*> references;
  for (const CaseFiles& files : dataset.training) {
    if (files.has_label) references[files.case_id] = &files;
  }
  const bool masks = dataset.labels.format == LabelFormat::channel_masks;
  std::map<std::string, fs::path> predictions;  // sorted by case id
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(validation_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (masks && entry.is_directory() && references.count(name)) {
      predictions[name] = entry.path();
    } else if (!masks && entry.is_regular_file() && ends_with(name, dataset.label_file_ending)) {
      const std::string case_id = name.substr(0, name.size() - dataset.label_file_ending.size());
      if (references.count(case_id)) predictions[case_id] = entry.path();
    }
  }

  for (const auto& [case_id, path] : predictions) {
    if (static_cast<int>(result.cases.size()) >= options.max_cases) break;
    CaseFiles prediction_files;
    prediction_files.case_id = case_id;
    prediction_files.label = path;
    prediction_files.has_label = true;
    if (masks) {
      for (const auto& channel : dataset.labels.channels) {
        prediction_files.channel_mask_files.push_back(path / (channel.name + dataset.label_file_ending));
      }
    }
    try {
      result.cases.push_back(draw_case(dataset, *references.at(case_id), prediction_files, options));
    } catch (const std::exception& error) {
      result.problems.push_back(case_id + ": " + error_message(error));
    }
  }
  return result;
}

}  // namespace mlseg
