#include "mlseg/preprocessing/preprocess.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <mutex>
#include <iostream>
#include <sstream>

#include "mlseg/core/content_hash.h"
#include "mlseg/core/error.h"
#include "mlseg/core/fault_injection.h"
#include "mlseg/core/run_lock.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/labels/label_encoding.h"
#include "mlseg/planning/planner.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/preprocessing/crop.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

CasePreprocessingPlan make_case_plan(const PlansFile& plans, const Json& labels, const std::string& configuration,
                                     const PreprocessOptions& options, const std::string& labels_source) {
  CasePreprocessingPlan plan;
  plan.configuration = configuration;
  const PlannedConfiguration& planned = plans.configuration(configuration);
  plan.transpose_forward = plans.transpose_forward;
  plan.transpose_backward = plans.transpose_backward;
  plan.spacing_mm = planned.spacing_mm;
  plan.normalization = planned.normalization;
  plan.use_mask_for_norm = planned.use_mask_for_norm();
  const ImageInterpolation planned_interpolation = planned.image_interpolation();
  if (options.image_interpolation && *options.image_interpolation != planned_interpolation) {
    const bool linear = *options.image_interpolation == ImageInterpolation::linear;
    throw Error("--image-interpolation " + std::string(linear ? "linear" : "cubic") + " differs from plans.json's configurations." +
                    configuration + ".resampling_fn_data_kwargs.order (" + std::to_string(planned.image_resampling_order) +
                    "), which prediction uses",
                "set that order to " + std::string(linear ? "1" : "3") + " in plans.json (then preprocess again), or drop the flag",
                {plans.source, "", ""});
  }
  plan.resample.image_interpolation = planned_interpolation;
  plan.anisotropy_threshold = options.anisotropy_threshold;
  plan.channel_names = plans.channel_names;
  plan.label_resampling = plans.encoding.label_resampling();
  const auto observed = observed_combinations_from_labels_json(labels, labels_source);
  plan.rare = plan_rare_combinations(observed, options.rare_policy);
  if (options.rare_policy == RareCombinationPolicy::keep) {
    for (const auto& combination : observed) {
      if (combination.rare && !combination.ignore) plan.location_combinations.push_back({combination.code_words, combination.name, true});
    }
  }
  plan.locations = options.locations;
  return plan;
}

std::string hex64(std::uint64_t value) {
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << value;
  return out.str();
}

/// Identity of a case's inputs and of everything that decides its output.
std::string input_fingerprint(const CaseFiles& files, const std::string& plan_identity) {
  std::string text = plan_identity;
  auto add_file = [&text](const fs::path& path) {
    std::error_code error;
    const auto size = fs::file_size(path, error);
    const auto time = fs::last_write_time(path, error);
    text += "|" + path.string() + ":" + std::to_string(error ? 0 : size) + ":" +
            std::to_string(error ? 0 : time.time_since_epoch().count());
  };
  for (const auto& image : files.images) add_file(image);
  if (!files.label.empty() && fs::is_regular_file(files.label)) add_file(files.label);
  for (const auto& mask : files.channel_mask_files) add_file(mask);
  return hex64(hash_bytes(text.data(), text.size()));
}

std::uint64_t directory_bytes(const fs::path& dir) {
  std::uint64_t total = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_regular_file(error)) total += entry.file_size(error);
  }
  return total;
}

}  // namespace

PreprocessedCase preprocess_case(const std::string& case_id, const Image& image, const CodeVolume& code,
                                 const CasePreprocessingPlan& plan) {
  const auto image_shape = image.shape_zyx();
  if (code.shape_zyx() != image_shape) {
    throw Error("the label's shape " + format_shape(code.shape_zyx()) + " differs from the image's " + format_shape(image_shape),
                "fix the case's files (mlseg verify lists such problems)", {"", case_id, ""});
  }
  PreprocessedCase result;
  CaseProperties& p = result.properties;
  torch::Tensor data = preprocess_image_data(case_id, image, plan, p);
  // The labels follow the image: same transpose, same crop box, same grid.
  const CropBox box{p.crop_begin, p.crop_end};
  CodeVolume cropped{crop_to_box(permute_spatial(code.words, plan.transpose_forward).contiguous(), box),
                     code.num_channels};
  if (p.shape_after_resample != p.shape_after_crop) {
    cropped = resample_codes(cropped, p.shape_after_resample, p.separate_axis, plan.label_resampling,
                             plan.resample.threads);
  }

  // Rare combinations, then sampling locations on the final codes.
  p.rare_policy = to_string(plan.rare.policy);
  p.rare_changes = apply_rare_combination_plan(cropped, plan.rare, plan.channel_names);
  CaseLocations locations = sample_locations(cropped, plan.channel_names, plan.location_combinations, case_id, plan.locations);
  p.channel_voxels = locations.channel_voxels;
  p.locations = std::move(locations.groups);
  result.location_rows = locations.rows;
  result.image = data;
  result.code = std::move(cropped);
  return result;
}

bool PreprocessRun::ok() const {
  return std::all_of(configurations.begin(), configurations.end(), [](const ConfigurationRun& c) { return c.failures.empty(); });
}

PreprocessRun preprocess_dataset(const fs::path& dataset_dir, const PreprocessOptions& options) {
  const Dataset dataset = load_dataset(dataset_dir);
  const fs::path work = resolve_work_dir(options.work_dir);
  const fs::path dataset_work = dataset_work_dir(work, dataset.name);
  const fs::path plans_file = dataset_work / "plans.json";
  const fs::path labels_file = dataset_work / "analysis" / "labels.json";
  PreprocessRun run;
  run.dataset_name = dataset.name;
  run.rare_policy = to_string(options.rare_policy);
  if (!fs::exists(plans_file) || !fs::exists(labels_file)) {
    if (options.show_progress) std::cerr << "mlseg preprocess: " << plans_file.string() << " is missing: running mlseg plan first (default options)\n";
    PlanOptions plan_options;
    plan_options.work_dir = options.work_dir;
    plan_options.threads = options.threads;
    plan_options.show_progress = options.show_progress;
    plan_dataset(dataset_dir, plan_options);
    run.ran_plan = true;
  }
  const PlansFile plans = read_plans(plans_file);
  const Json labels = read_json_file(labels_file);

  std::vector<CaseFiles> cases;
  for (const auto& files : dataset.training) {
    if (files.has_label) cases.push_back(files);
  }
  if (cases.empty()) {
    throw Error("the dataset has no training case with labels", "check imagesTr/ and labelsTr/ (mlseg verify lists problems)",
                {dataset_dir.string(), "", ""});
  }

  std::vector<std::string> configurations = options.configurations;
  if (configurations.empty()) configurations.push_back(plans.has_configuration("3d_fullres") ? "3d_fullres" : "2d");
  // A configuration that only inherits (nnU-Net's 3d_cascade_fullres) uses its parent's data.
  {
    std::vector<std::string> resolved;
    for (auto name : configurations) {
      if (plans.has_configuration(name) && plans.configuration(name).data_configuration != name) {
        const std::string parent = plans.configuration(name).data_configuration;
        if (options.show_progress) std::cerr << "mlseg preprocess: " << name << " uses " << parent << "'s preprocessed data\n";
        name = parent;
      }
      if (std::find(resolved.begin(), resolved.end(), name) == resolved.end()) resolved.push_back(name);
    }
    configurations = resolved;
  }
  const int threads = options.threads > 0 ? options.threads : default_thread_count();

  for (const auto& configuration : configurations) {
    const auto start = std::chrono::steady_clock::now();
    CasePreprocessingPlan plan = make_case_plan(plans, labels, configuration, options, labels_file.string());
    ConfigurationRun config_run;
    config_run.configuration = configuration;
    config_run.store_dir = store_dir_for(dataset_work, configuration);
    // One writer per store: a second preprocess (or a train preprocessing it) is refused.
    const RunLock store_lock(config_run.store_dir.parent_path() / ("." + configuration + ".lock"),
                             "preprocessing " + configuration + " of " + dataset_work.filename().string());
    if (options.overwrite) fs::remove_all(config_run.store_dir);
    fs::create_directories(config_run.store_dir);
    // The plan's identity: this configuration, the transposes, intensity properties and the options.
    const Json& json = plans.json;
    const std::string plan_identity = std::string(kStoreFormatVersion) + "|" + json["configurations"][configuration].dump() +
                                      "|" + json.value("transpose_forward", Json::array()).dump() + "|" +
                                      json.value("foreground_intensity_properties_per_channel", Json::object()).dump() + "|" +
                                      json.value("label_encoding", std::string()) + json.value("powerset_combinations", Json::array()).dump() +
                                      "|" + run.rare_policy + "|" +

                                      std::to_string(options.anisotropy_threshold) + "|" + std::to_string(options.locations.seed) + "|" +
                                      std::to_string(options.locations.max_per_group) + "|" + std::to_string(options.locations.min_fraction);

    // Which cases are already done with the same inputs.
    std::vector<size_t> todo;
    std::vector<std::string> fingerprints(cases.size());
    std::vector<std::array<std::int64_t, 3>> shapes(cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      fingerprints[i] = input_fingerprint(cases[i], plan_identity);
      const fs::path properties_file = store_properties_file(config_run.store_dir, cases[i].case_id);
      bool done = false;
      if (fs::exists(properties_file) && fs::exists(store_image_file(config_run.store_dir, cases[i].case_id)) &&
          fs::exists(store_codes_file(config_run.store_dir, cases[i].case_id)) &&
          fs::exists(store_locations_file(config_run.store_dir, cases[i].case_id))) {
        try {
          const auto properties = case_properties_from_json(read_json_file(properties_file), properties_file.string());
          done = properties.input_fingerprint == fingerprints[i];
          shapes[i] = properties.shape_after_resample;
        } catch (const Error&) {
          done = false;
        }
      }
      if (done) {
        ++config_run.unchanged;
      } else {
        todo.push_back(i);
      }
    }

    const int outer = std::max(1, std::min<int>(threads, static_cast<int>(todo.size())));
    plan.resample.threads = std::max(1, threads / outer);
    Progress progress("preprocess " + configuration, static_cast<std::int64_t>(todo.size()), "cases",
                      ProgressOptions{options.show_progress && !todo.empty()});
    std::mutex mutex;
    std::vector<CaseProperties> results(cases.size());
    std::vector<bool> succeeded(cases.size(), false);
    parallel_for(todo.size(), outer, [&](size_t k) {
      const size_t i = todo[k];
      const CaseFiles& files = cases[i];
      try {
        const fs::path properties_file = store_properties_file(config_run.store_dir, files.case_id);
        fs::remove(properties_file);  // the case counts as unfinished until its CASE.json is back
        const Image image = read_case_images(dataset, files);
        const CaseLabels labels_read = read_case_labels(dataset, files);
        PreprocessedCase done = preprocess_case(files.case_id, image, labels_read.code, plan);
        done.properties.input_fingerprint = fingerprints[i];
        write_npy(store_image_file(config_run.store_dir, files.case_id), done.image);
        write_npy(store_codes_file(config_run.store_dir, files.case_id), done.code.words, true);
        write_npy(store_locations_file(config_run.store_dir, files.case_id), done.location_rows);
        write_json_file(properties_file, case_properties_to_json(done.properties));  // last: marks the case done
        fault_point("preprocess_case");
        std::lock_guard<std::mutex> lock(mutex);
        shapes[i] = done.properties.shape_after_resample;
        results[i] = std::move(done.properties);
        succeeded[i] = true;
      } catch (const Error& error) {
        std::lock_guard<std::mutex> lock(mutex);
        const Error located = error.located({"", files.case_id, ""});
        config_run.failures.push_back({files.case_id, std::string(located.what())});
      } catch (const std::exception& error) {
        std::lock_guard<std::mutex> lock(mutex);
        config_run.failures.push_back({files.case_id, error_message(error)});
      }
      progress.advance();
    });
    progress.finish();
    std::sort(config_run.failures.begin(), config_run.failures.end(),
              [](const auto& a, const auto& b) { return a.case_id < b.case_id; });

    for (size_t i = 0; i < cases.size(); ++i) {
      if (!succeeded[i]) continue;
      ++config_run.preprocessed;
      for (const auto& change : results[i].rare_changes) {
        auto& [action, voxels, case_count] = config_run.rare_changes[change.combination];
        action = change.action == "merged" ? "merged into " + change.merged_into : "ignored";
        voxels += change.voxels;
        ++case_count;
      }
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      if (shapes[i][0] > 0) config_run.shapes.push_back(shapes[i]);
    }
    if (plan.spacing_mm.size() == 3) config_run.spacing_mm = {plan.spacing_mm[0], plan.spacing_mm[1], plan.spacing_mm[2]};
    else config_run.spacing_mm = {0, plan.spacing_mm[0], plan.spacing_mm[1]};

    const fs::path store_file = config_run.store_dir / kStoreFile;
    if (config_run.failures.empty()) {
      StoreInfo info;
      info.dataset = dataset.name;
      info.configuration = configuration;
      info.image_channels = dataset.image_channel_names;
      info.num_image_channels = static_cast<int>(plan.normalization.size());
      info.channel_names = plan.channel_names;
      const auto layout = code_layout(dataset.labels.num_channels());
      info.num_code_words = layout.num_words;
      info.code_descr = npy_descr(layout.dtype, true);
      info.label_encoding = plans.encoding.name();
      info.channels_overlap = dataset.labels.channels_can_overlap();
      info.has_ignore = dataset.labels.ignore_value.has_value() || options.rare_policy == RareCombinationPolicy::ignore;
      info.spacing_mm = config_run.spacing_mm;
      info.patch_size = plans.configuration(configuration).patch_size;
      info.rare_policy = run.rare_policy;
      for (const auto& files : cases) info.cases.push_back(files.case_id);
      write_json_file(store_file, store_info_to_json(info));
    } else {
      fs::remove(store_file);  // a partial store must not be trained on
    }
    config_run.store_bytes = directory_bytes(config_run.store_dir);
    config_run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.configurations.push_back(std::move(config_run));
  }
  return run;
}

namespace {

std::string median_shape_text(std::vector<std::array<std::int64_t, 3>> shapes) {
  if (shapes.empty()) return "-";
  std::array<std::int64_t, 3> median{};
  for (int axis = 0; axis < 3; ++axis) {
    std::vector<std::int64_t> values;
    for (const auto& s : shapes) values.push_back(s[static_cast<size_t>(axis)]);
    std::nth_element(values.begin(), values.begin() + static_cast<long>(values.size() / 2), values.end());
    median[static_cast<size_t>(axis)] = values[values.size() / 2];
  }
  return format_shape(median);
}

std::string megabytes(std::uint64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return out.str();
}

}  // namespace

std::string format_preprocess_report(const PreprocessRun& run) {
  std::ostringstream out;
  if (run.ran_plan) out << "plans.json was missing: ran mlseg plan first\n";
  for (const auto& c : run.configurations) {
    out << c.configuration << ": " << c.preprocessed << " case" << (c.preprocessed == 1 ? "" : "s") << " preprocessed, "
        << c.unchanged << " unchanged (skipped), " << c.failures.size() << " failed, " << format_duration(c.seconds) << "\n";
    out << "  store: " << c.store_dir.string() << " (" << megabytes(c.store_bytes) << ")\n";
    out << "  median shape " << median_shape_text(c.shapes) << " (z x y x x) at ";
    if (c.spacing_mm[0] > 0) out << format_zyx(c.spacing_mm) << " mm\n";
    else out << "each case's own z spacing x " << c.spacing_mm[1] << " x " << c.spacing_mm[2] << " mm\n";
    if (run.rare_policy != "keep") {
      if (c.rare_changes.empty()) {
        out << "  rare combinations (--rare-combos " << run.rare_policy << "): no voxel changed in the cases preprocessed now\n";
      } else {
        out << "  rare combinations (--rare-combos " << run.rare_policy << "):\n";
        for (const auto& [name, entry] : c.rare_changes) {
          out << "    " << name << ": " << std::get<0>(entry) << ", " << std::get<1>(entry) << " voxels in " << std::get<2>(entry)
              << " case" << (std::get<2>(entry) == 1 ? "" : "s") << "\n";
        }
      }
    }
    for (const auto& failure : c.failures) out << "  FAILED " << failure.case_id << ": " << failure.message << "\n";
    if (!c.failures.empty()) {
      out << "  store.json was not written: fix the failed cases and run mlseg preprocess again (finished cases are kept)\n";
    }
  }
  return out.str();
}

Json preprocess_run_to_json(const PreprocessRun& run) {
  Json out{{"dataset", run.dataset_name}, {"ran_plan", run.ran_plan}, {"rare_policy", run.rare_policy}, {"configurations", Json::array()}};
  for (const auto& c : run.configurations) {
    Json failures = Json::array();
    for (const auto& f : c.failures) failures.push_back({{"case", f.case_id}, {"error", f.message}});
    Json rare = Json::array();
    for (const auto& [name, entry] : c.rare_changes) {
      rare.push_back({{"combination", name}, {"action", std::get<0>(entry)}, {"voxels", std::get<1>(entry)}, {"cases", std::get<2>(entry)}});
    }
    out["configurations"].push_back({{"configuration", c.configuration},
                                     {"store", c.store_dir.string()},
                                     {"preprocessed", c.preprocessed},
                                     {"unchanged", c.unchanged},
                                     {"failures", failures},
                                     {"seconds", c.seconds},
                                     {"store_bytes", c.store_bytes},
                                     {"rare_changes", rare}});
  }
  return out;
}

}  // namespace mlseg
