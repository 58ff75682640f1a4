#include "mlseg/synth/phantom.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/random.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/json_file.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

using Random = SplitMix64;

enum class Shape { ellipsoid, tube_along_x };

struct Structure {
  Shape shape = Shape::ellipsoid;
  std::array<double, 3> center{0, 0, 0};  // normalised coordinates in [-1, 1], zyx
  std::array<double, 3> radius{0.1, 0.1, 0.1};
  bool present = true;
};

constexpr int kNamedKinds = 6;
const char* const kKindNames[kNamedKinds] = {"body", "organ", "lesion", "vessel", "cyst", "rare"};

std::vector<Structure> case_structures(int index, const PhantomOptions& options, Random& random) {
  auto jitter = [&](double amount) { return random.uniform(-amount, amount); };
  std::vector<Structure> structures(options.num_channels);
  const double scale = random.uniform(0.85, 1.15);
  for (int c = 0; c < options.num_channels; ++c) {
    Structure& s = structures[c];
    switch (c) {
      case 0:  // body
        s.center = {jitter(0.05), jitter(0.05), jitter(0.05)};
        s.radius = {0.8, 0.85 * scale, 0.85 * scale};
        break;
      case 1:  // organ, inside body
        s.center = {jitter(0.08), -0.15 + jitter(0.08), 0.2 + jitter(0.08)};
        s.radius = {0.45, 0.4 * scale, 0.35 * scale};
        break;
      case 2:  // lesion, inside organ
        s.center = {structures[1].center[0] + jitter(0.1), structures[1].center[1] + jitter(0.1),
                    structures[1].center[2] + jitter(0.1)};
        s.radius = {0.15, 0.12, 0.12};
        s.present = index % 5 != 4;
        break;
      case 3:  // vessel, a tube through the organ that leaves the body
        s.shape = Shape::tube_along_x;
        s.center = {structures[1].center[0] + jitter(0.05), structures[1].center[1] + jitter(0.05), 0};
        s.radius = {0.16, 0.09, 1.0};
        break;
      case 4:  // cyst, inside body, away from organ
        s.center = {jitter(0.05), 0.45 + jitter(0.05), -0.4 + jitter(0.05)};
        s.radius = {0.2, 0.15, 0.15};
        break;
      case 5:  // rare: the cyst's twin (same size and contrast magnitude, across the body), in few cases
        s.center = {jitter(0.05), -0.5 + jitter(0.05), -0.35 + jitter(0.05)};
        s.radius = structures[4].radius;
        s.present = options.rare_every > 0 && index % options.rare_every == 0;
        break;
      default:  // extra blobs, anywhere, partly overlapping others
        s.center = {jitter(0.5), jitter(0.6), jitter(0.6)};
        const double r = random.uniform(0.08, 0.18);
        s.radius = {r * 1.5, r, r};
        s.present = random.uniform() < 0.7;
        break;
    }
  }
  return structures;
}

// Contrast of structure c in image channel m (different modalities see different structures).
// Every |contrast| is at least kPhantomMinAbsContrast (phantom.h); none is minus the body's, so
// nothing on the body looks like background.
double contrast(int channel, int image_channel) {
  // body, organ, lesion, vessel, cyst (dark), rare (the cyst's twin: same magnitude, bright).
  static const double table[kNamedKinds][3] = {{1.0, 0.6, 0.8},   {0.8, 1.2, 0.5},    {1.5, -0.6, 1.0},
                                               {-0.5, 0.9, 1.2},  {-1.2, -0.7, -0.6}, {1.2, 0.7, 0.6}};
  // Blobs cycle through these; in image channel 0 the first four blobs (struct_06..09) differ from
  // each other and from the named structures.
  static const double blobs[5] = {0.6, 1.8, -1.6, 2.4, 3.0};
  if (channel < kNamedKinds) return table[channel][image_channel % 3];
  return blobs[(channel - kNamedKinds + 2 * (image_channel % 3)) % 5];
}

std::string case_name(int index, bool test) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%s_%04d", test ? "phantom_test" : "phantom", index);
  return buffer;
}

}  // namespace

std::string to_string(PhantomLabelFormat format) {
  switch (format) {
    case PhantomLabelFormat::label_map: return "label_map";
    case PhantomLabelFormat::regions: return "regions";
    case PhantomLabelFormat::bitmask: return "bitmask";
    case PhantomLabelFormat::multihot4d: return "multihot4d";
    case PhantomLabelFormat::channel_masks: return "channel_masks";
  }
  return "unknown";
}

bool parse_phantom_label_format(const std::string& text, PhantomLabelFormat& format) {
  for (auto candidate : {PhantomLabelFormat::label_map, PhantomLabelFormat::regions, PhantomLabelFormat::bitmask,
                         PhantomLabelFormat::multihot4d, PhantomLabelFormat::channel_masks}) {
    if (text == to_string(candidate)) {
      format = candidate;
      return true;
    }
  }
  return false;
}

std::vector<std::string> phantom_channel_names(int num_channels) {
  std::vector<std::string> names;
  for (int c = 0; c < num_channels; ++c) {
    if (c < kNamedKinds) {
      names.emplace_back(kKindNames[c]);
    } else {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "struct_%02d", c);
      names.emplace_back(buffer);
    }
  }
  return names;
}

PhantomCase make_phantom_case(int index, const PhantomOptions& options, bool test_case) {
  Random random(options.seed * 0x100000001b3ULL + static_cast<std::uint64_t>(index) * 2 + (test_case ? 1 : 0));
  const auto structures = case_structures(index, options, random);
  const auto& shape = options.shape_zyx;
  PhantomCase result;
  result.case_id = case_name(index, test_case);
  result.code = empty_code_volume(shape, options.num_channels);
  result.image.data = torch::zeros({options.num_image_channels, shape[0], shape[1], shape[2]}, torch::kFloat32);
  Geometry& geometry = result.image.geometry;
  geometry.spacing_zyx_mm = options.spacing_zyx_mm;
  for (int axis = 0; axis < 3; ++axis) geometry.origin_zyx_mm[axis] = -0.5 * shape[axis] * options.spacing_zyx_mm[axis];

  const std::int64_t voxels = shape[0] * shape[1] * shape[2];
  torch::Tensor masks = torch::zeros({options.num_channels, shape[0], shape[1], shape[2]}, torch::kUInt8);
  auto* mask_data = masks.data_ptr<std::uint8_t>();
  for (int c = 0; c < options.num_channels; ++c) {
    const Structure& s = structures[c];
    if (!s.present) continue;
    std::uint8_t* mask = mask_data + static_cast<std::int64_t>(c) * voxels;
    for (std::int64_t z = 0; z < shape[0]; ++z) {
      const double u = shape[0] == 1 ? 0.0 : (z + 0.5) / shape[0] * 2 - 1;
      for (std::int64_t y = 0; y < shape[1]; ++y) {
        const double v = (y + 0.5) / shape[1] * 2 - 1;
        for (std::int64_t x = 0; x < shape[2]; ++x) {
          const double w = (x + 0.5) / shape[2] * 2 - 1;
          const double dz = (u - s.center[0]) / s.radius[0], dy = (v - s.center[1]) / s.radius[1];
          double distance;
          if (s.shape == Shape::tube_along_x) {
            distance = std::abs(w) <= 0.9 ? dz * dz + dy * dy : 2.0;
          } else {
            const double dx = (w - s.center[2]) / s.radius[2];
            distance = dz * dz + dy * dy + dx * dx;
          }
          if (distance <= 1.0) mask[(z * shape[1] + y) * shape[2] + x] = 1;
        }
      }
    }
  }
  // Nesting by construction: organ stays inside body, lesion inside organ, whatever the jitter.
  if (options.num_channels > 1) masks[1].mul_(masks[0]);
  if (options.num_channels > 2) masks[2].mul_(masks[1]);
  for (int c = 0; c < options.num_channels; ++c) add_channel_mask(result.code, c, masks[c].unsqueeze(0));

  auto* image = result.image.data.data_ptr<float>();
  for (int m = 0; m < options.num_image_channels; ++m) {
    float* target = image + static_cast<std::int64_t>(m) * voxels;
    for (int c = 0; c < options.num_channels; ++c) {
      const std::uint8_t* mask = mask_data + static_cast<std::int64_t>(c) * voxels;
      const auto weight = static_cast<float>(contrast(c, m));
      for (std::int64_t i = 0; i < voxels; ++i) target[i] += weight * mask[i];
    }
    for (std::int64_t i = 0; i < voxels; ++i) target[i] += static_cast<float>(options.noise_std * random.normal());
  }
  return result;
}

namespace {

// Label value per combination for the regions format: combinations seen in any case, in code order.
std::map<std::uint64_t, std::int64_t> region_label_values(const PhantomOptions& options) {
  std::set<std::uint64_t> combinations;
  for (int i = 0; i < options.num_cases; ++i) {
    const PhantomCase phantom = make_phantom_case(i, options);
    const torch::Tensor words = phantom.code.words.to(torch::kInt64);
    const torch::Tensor unique = std::get<0>(torch::_unique(words.flatten()));
    for (std::int64_t k = 0; k < unique.numel(); ++k) {
      const auto value = static_cast<std::uint64_t>(unique[k].item<std::int64_t>());
      if (value) combinations.insert(value);
    }
  }
  std::map<std::uint64_t, std::int64_t> values;
  std::int64_t next = 1;
  for (std::uint64_t combination : combinations) values[combination] = next++;
  return values;
}

nlohmann::ordered_json dataset_json(const PhantomOptions& options,
                                    const std::map<std::uint64_t, std::int64_t>& region_values) {
  const auto names = phantom_channel_names(options.num_channels);
  nlohmann::ordered_json json;
  json["name"] = options.dataset_name;
  json["description"] = "mlseg synthetic phantom (seed " + std::to_string(options.seed) + ", " +
                        std::to_string(options.num_channels) + " overlapping channels)";
  json["channel_names"] = nlohmann::ordered_json::object();
  static const char* const modalities[] = {"MR_A", "MR_B", "MR_C"};
  for (int m = 0; m < options.num_image_channels; ++m) {
    json["channel_names"][std::to_string(m)] = m < 3 ? modalities[m] : "MR_" + std::to_string(m);
  }
  nlohmann::ordered_json labels = nlohmann::ordered_json::object();
  labels["background"] = 0;
  switch (options.label_format) {
    case PhantomLabelFormat::label_map:
      for (int c = 0; c < options.num_channels; ++c) labels[names[c]] = c + 1;
      break;
    case PhantomLabelFormat::regions: {
      nlohmann::ordered_json order = nlohmann::ordered_json::array();
      for (int c = 0; c < options.num_channels; ++c) {
        nlohmann::ordered_json members = nlohmann::ordered_json::array();
        std::int64_t export_label = 0;
        int fewest_bits = 1 << 30;
        for (const auto& [combination, value] : region_values) {
          if (!((combination >> c) & 1)) continue;
          members.push_back(value);
          const int bits = __builtin_popcountll(combination);
          if (bits < fewest_bits) {
            fewest_bits = bits;
            export_label = value;
          }
        }
        if (members.empty()) members.push_back(static_cast<std::int64_t>(region_values.size()) + 1 + c);
        labels[names[c]] = members;
        order.push_back(export_label ? export_label : members[0].get<std::int64_t>());
      }
      json["labels"] = labels;
      json["regions_class_order"] = order;
      break;
    }
    case PhantomLabelFormat::bitmask:
      json["label_format"] = "bitmask";
      for (int c = 0; c < options.num_channels; ++c) labels[names[c]] = std::int64_t{1} << c;
      break;
    case PhantomLabelFormat::multihot4d:
      json["label_format"] = "multihot4d";
      for (int c = 0; c < options.num_channels; ++c) labels[names[c]] = c + 1;
      break;
    case PhantomLabelFormat::channel_masks:
      json["label_format"] = "channel_masks";
      for (int c = 0; c < options.num_channels; ++c) labels[names[c]] = c + 1;
      break;
  }
  if (!json.contains("labels")) json["labels"] = labels;
  json["numTraining"] = options.num_cases;
  json["file_ending"] = options.file_ending;
  return json;
}

// Narrowest integer dtype for a raw bitmask / label value of `max_value`.
torch::ScalarType label_dtype(std::int64_t max_value) {
  if (max_value <= 255) return torch::kUInt8;
  if (max_value <= 32767) return torch::kInt16;
  if (max_value <= 2147483647) return torch::kInt32;
  return torch::kInt64;
}

void validate_options(const PhantomOptions& options, const fs::path& output_dir) {
  const ErrorLocation where{output_dir.string(), "", ""};
  if (options.num_cases < 1) throw Error("--cases must be at least 1", "pass --cases N with N >= 1", where);
  if (options.num_channels < 1 || options.num_channels > kMaxChannels) {
    throw Error("--channels must be 1.." + std::to_string(kMaxChannels), "pick a channel count in range", where);
  }
  if (options.num_image_channels < 1 || options.num_image_channels > 16) {
    throw Error("--image-channels must be 1..16", "pick an image channel count in range", where);
  }
  for (auto extent : options.shape_zyx) {
    if (extent < 1 || extent > 1024) throw Error("--shape extents must be 1..1024", "pick a smaller phantom", where);
  }
  if (options.label_format == PhantomLabelFormat::bitmask && options.num_channels > 62) {
    throw Error("the bitmask format holds at most 62 channels in one integer map",
                "use --format multihot4d or channel_masks for more channels", where);
  }
  if ((options.label_format == PhantomLabelFormat::label_map || options.label_format == PhantomLabelFormat::regions) &&
      options.num_channels > 64) {
    throw Error("label_map/regions phantoms support at most 64 channels",
                "use --format multihot4d or channel_masks for more channels", where);
  }
  if (is_2d_image_format(options.file_ending) && options.shape_zyx[0] != 1) {
    throw Error(options.file_ending + " is a 2D format but the shape has " + std::to_string(options.shape_zyx[0]) +
                    " slices",
                "pass --shape 1,Y,X for 2D phantoms", where);
  }
  if (is_2d_image_format(options.file_ending) && options.label_format == PhantomLabelFormat::multihot4d) {
    throw Error("multihot4d needs a 3D/4D format", "use --format channel_masks for 2D multi-label phantoms", where);
  }
}

}  // namespace

void write_phantom_dataset(const fs::path& output_dir, const PhantomOptions& options) {
  validate_options(options, output_dir);
  std::error_code ignored;
  if (fs::exists(output_dir) && !fs::is_empty(output_dir, ignored)) {
    throw Error("the output folder exists and is not empty",
                "pass a new folder (mlseg synth never overwrites a dataset)", {output_dir.string(), "", ""});
  }
  // Build in a hidden sibling folder, rename into place at the end: whole or nothing.
  const fs::path parent = output_dir.has_parent_path() ? output_dir.parent_path() : fs::path(".");
  fs::create_directories(parent);
  const fs::path staging = parent / ("." + output_dir.filename().string() + ".partial");
  fs::remove_all(staging, ignored);
  fs::create_directories(staging / "imagesTr");
  fs::create_directories(staging / "labelsTr");
  if (options.num_test_cases > 0) fs::create_directories(staging / "imagesTs");

  try {
    const auto region_values = options.label_format == PhantomLabelFormat::regions
                                   ? region_label_values(options)
                                   : std::map<std::uint64_t, std::int64_t>{};
    const nlohmann::ordered_json json = dataset_json(options, region_values);
    LabelSpec spec;
    const auto names = phantom_channel_names(options.num_channels);
    const bool flat = is_2d_image_format(options.file_ending);
    const std::size_t total = static_cast<std::size_t>(options.num_cases + options.num_test_cases);
    ProgressOptions progress_options;
    progress_options.enabled = options.show_progress;
    Progress progress("synth", static_cast<std::int64_t>(total), "cases", progress_options);
    std::vector<std::string> failures(total);
    parallel_for(total, options.threads, [&](std::size_t job) {
      struct AdvanceOnExit {
        Progress& progress;
        ~AdvanceOnExit() { progress.advance(); }
      } advance_on_exit{progress};
      try {
        const bool test = static_cast<int>(job) >= options.num_cases;
        const int index = test ? static_cast<int>(job) - options.num_cases : static_cast<int>(job);
        const PhantomCase phantom = make_phantom_case(index, options, test);
        const fs::path images = staging / (test ? "imagesTs" : "imagesTr");
        for (int m = 0; m < options.num_image_channels; ++m) {
          char suffix[16];
          std::snprintf(suffix, sizeof suffix, "_%04d", m);
          Image channel{phantom.image.data.slice(0, m, m + 1), phantom.image.geometry};
          if (flat) {  // 8-bit formats: map the phantom's intensities, -2 .. 4.4, to 0..255
            channel.data = ((channel.data + 2.0) * 40.0).clamp(0, 255).round().to(torch::kUInt8);
          }
          write_image(channel, images / (phantom.case_id + suffix + options.file_ending));
        }
        if (test) return;
        const torch::Tensor masks = decode_channels(phantom.code);
        const fs::path labels = staging / "labelsTr";
        Image label{torch::Tensor(), phantom.image.geometry};
        switch (options.label_format) {
          case PhantomLabelFormat::label_map: {
            torch::Tensor map = torch::zeros({1, masks.size(1), masks.size(2), masks.size(3)}, torch::kInt64);
            for (int c = 0; c < options.num_channels; ++c) map.masked_fill_(masks[c].unsqueeze(0).to(torch::kBool), c + 1);
            label.data = map.to(label_dtype(options.num_channels));
            write_image(label, labels / (phantom.case_id + options.file_ending));
            break;
          }
          case PhantomLabelFormat::regions: {
            const torch::Tensor words = phantom.code.words.to(torch::kInt64);
            torch::Tensor map = torch::zeros_like(words);
            for (const auto& [combination, value] : region_values) {
              map.masked_fill_(words == static_cast<std::int64_t>(combination), value);
            }
            label.data = map.to(label_dtype(static_cast<std::int64_t>(region_values.size())));
            write_image(label, labels / (phantom.case_id + options.file_ending));
            break;
          }
          case PhantomLabelFormat::bitmask: {
            torch::Tensor map = torch::zeros({1, masks.size(1), masks.size(2), masks.size(3)}, torch::kInt64);
            for (int c = 0; c < options.num_channels; ++c) {
              map.add_(masks[c].unsqueeze(0).to(torch::kInt64) * (std::int64_t{1} << c));
            }
            label.data = map.to(label_dtype((std::int64_t{1} << options.num_channels) - 1));
            write_image(label, labels / (phantom.case_id + options.file_ending));
            break;
          }
          case PhantomLabelFormat::multihot4d:
            label.data = masks;
            write_image(label, labels / (phantom.case_id + options.file_ending));
            break;
          case PhantomLabelFormat::channel_masks:
            for (int c = 0; c < options.num_channels; ++c) {
              label.data = masks[c].unsqueeze(0) * (flat ? 255 : 1);
              write_image(label, labels / phantom.case_id / (names[c] + options.file_ending));
            }
            break;
        }
      } catch (const std::exception& error) {
        failures[job] = error.what();
      }
    });
    progress.finish();
    for (const auto& failure : failures) {
      if (!failure.empty()) throw Error("writing the phantom failed: " + failure, "check disk space and permissions",
                                        {output_dir.string(), "", ""});
    }
    write_json_file(staging / "dataset.json", json);
    if (fs::exists(output_dir)) fs::remove(output_dir);  // empty by the check above
    fs::rename(staging, output_dir);
  } catch (...) {
    fs::remove_all(staging, ignored);
    throw;
  }
}

}  // namespace mlseg
