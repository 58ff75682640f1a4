#include "mlseg/inference/predict.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/core/fault_injection.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/inference/cascade.h"
#include "mlseg/inference/nnunet_model.h"
#include "mlseg/inference/prediction_folder.h"
#include "mlseg/inference/slab_prediction.h"
#include "mlseg/io/image_io.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr int kChannelDigits = 4;  // nnU-Net's CASE_0000 naming

/// "CASE_0001.nii.gz" → {"CASE", 1}; nullopt for other names.
std::optional<std::pair<std::string, int>> split_image_name(const fs::path& path) {
  if (!is_supported_image_file(path)) return std::nullopt;
  const std::string name = path.filename().string();
  const std::string ending = full_extension(path);
  const std::string stem = name.substr(0, name.size() - ending.size());
  if (stem.size() < kChannelDigits + 2 || stem[stem.size() - kChannelDigits - 1] != '_') return std::nullopt;
  const std::string digits = stem.substr(stem.size() - kChannelDigits);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return std::make_pair(stem.substr(0, stem.size() - kChannelDigits - 1), std::stoi(digits));
}

}  // namespace

Image read_input_case(const InputCase& input) {
  Image image;
  std::vector<torch::Tensor> channels;
  for (const auto& file : input.images) {
    Image part = read_image(file);
    if (channels.empty()) {
      image = part;
    } else if (part.shape_zyx() != image.shape_zyx() || !spacing_matches(part.geometry, image.geometry) ||
               !origin_matches(part.geometry, image.geometry) || !direction_matches(part.geometry, image.geometry)) {
      throw Error("channel file " + file.filename().string() + " has another grid than " + input.images.front().filename().string(),
                  "all channel files of a case must share shape, spacing, origin and direction", {file.string(), input.case_id, ""});
    }
    channels.push_back(part.data);
  }
  image.data = channels.size() == 1 ? channels.front() : torch::cat(channels, 0);
  return image;
}

std::vector<InputCase> list_input_cases(const fs::path& input, std::int64_t expected_channels) {
  std::map<std::string, std::map<int, fs::path>> found;
  std::error_code ec;
  fs::path folder = input;
  std::optional<std::string> only_case;
  if (fs::is_regular_file(input, ec)) {
    const auto parts = split_image_name(input);
    if (!parts) {
      throw Error("input file " + input.filename().string() + " is not named CASE_XXXX<ending> (nnU-Net imagesTs naming)",
                  "rename it, e.g. to case_0000.nii.gz (one file per modality: _0000, _0001, ...)", {input.string(), "", ""});
    }
    folder = input.parent_path().empty() ? fs::path(".") : input.parent_path();
    only_case = parts->first;
  } else if (!fs::is_directory(input, ec)) {
    throw Error("input " + input.string() + " does not exist", "pass a folder of images (e.g. DATASET/imagesTs) or one image file",
                {input.string(), "", ""});
  } else if (fs::is_regular_file(input / "dataset.json", ec) && fs::is_directory(input / "imagesTs", ec)) {
    folder = input / "imagesTs";
  }
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (!entry.is_regular_file()) continue;
    const auto parts = split_image_name(entry.path());
    if (!parts || (only_case && parts->first != *only_case)) continue;
    found[parts->first][parts->second] = entry.path();
  }
  if (found.empty()) {
    throw Error("no images named CASE_XXXX<ending> in " + folder.string(),
                "nnU-Net's imagesTs naming: one file per case and modality, e.g. case_0000.nii.gz", {folder.string(), "", ""});
  }
  std::vector<InputCase> cases;
  for (const auto& [case_id, files] : found) {
    InputCase c;
    c.case_id = case_id;
    int expected_index = 0;
    for (const auto& [index, path] : files) {
      if (index != expected_index) {
        throw Error("case " + case_id + " has channel file _" + std::to_string(index) + " but no _" + std::to_string(expected_index),
                    "channel files must be numbered _0000, _0001, ... without gaps", {path.string(), case_id, ""});
      }
      c.images.push_back(path);
      ++expected_index;
    }
    if (expected_channels > 0 && static_cast<std::int64_t>(c.images.size()) != expected_channels) {
      throw Error("case " + case_id + " has " + std::to_string(c.images.size()) + " channel file(s), the model was trained on " +
                      std::to_string(expected_channels),
                  "give every case one file per modality (_0000 .. _" + std::to_string(expected_channels - 1) + ") as in training",
                  {c.images.front().string(), case_id, ""});
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

std::vector<fs::path> find_checkpoints(const fs::path& model_dir, const std::vector<std::string>& folds, const std::string& name) {
  if (name != "final" && name != "best" && name != "latest") {
    throw Error("--checkpoint is '" + name + "'", "use final, best or latest");
  }
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    throw Error("model folder " + model_dir.string() + " does not exist",
                "pass WORK/<dataset>/results/<configuration> (the folder holding fold_0, fold_1, ...)", {model_dir.string(), "", ""});
  }
  // nnU-Net v2's model folders hold checkpoint_<name>.pth (nnUNetTrainer.save_checkpoint).
  const std::string file = "checkpoint_" + name + (is_nnunet_model_folder(model_dir) ? ".pth" : ".pt");
  std::vector<fs::path> checkpoints;
  if (!folds.empty()) {
    for (const auto& fold : folds) {
      const fs::path path = model_dir / ("fold_" + fold) / file;
      if (!fs::is_regular_file(path, ec)) {
        throw Error("fold " + fold + " has no " + file, "train that fold, or choose other folds (-f) or --checkpoint best|latest",
                    {path.string(), "", ""});
      }
      checkpoints.push_back(path);
    }
    return checkpoints;
  }
  std::vector<std::string> available;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    const std::string folder = entry.path().filename().string();
    if (entry.is_directory() && folder.rfind("fold_", 0) == 0 && fs::is_regular_file(entry.path() / file, ec)) {
      checkpoints.push_back(entry.path() / file);
      available.push_back(folder);
    }
  }
  std::sort(checkpoints.begin(), checkpoints.end());
  if (checkpoints.empty()) {
    throw Error("no fold_*/" + file + " in " + model_dir.string(), "train a fold first, or pass --checkpoint best|latest",
                {model_dir.string(), "", ""});
  }
  return checkpoints;
}

PredictRun predict_folder(const fs::path& input, const fs::path& output_dir, const fs::path& model_dir, const PredictFolderOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const torch::Device device = resolve_device(options.device);  // before any work: a wrong --device fails at once
  PredictRun run;
  run.model_dir = model_dir;
  run.output_dir = output_dir;
  run.checkpoints = find_checkpoints(model_dir, options.folds, options.checkpoint);
  const bool nnunet_model = is_nnunet_model_folder(model_dir);
  std::vector<LoadedCheckpoint> models;
  if (nnunet_model) {
    models = load_nnunet_model(model_dir, run.checkpoints);
  } else {
    for (const auto& path : run.checkpoints) models.push_back(load_checkpoint(path));
  }
  const ModelDescription& model = shared_model_description(models);
  const LabelEncoding& encoding = model.encoding;
  const int num_channels = static_cast<int>(model.channel_names.size());

  ExportOptions export_options;
  // An nnU-Net model writes what nnU-Net writes (label maps, regions by regions_class_order),
  // unless --format asks for more.
  export_options.format = options.format.value_or(nnunet_model ? PredictionFormat::labelmap : default_prediction_format(encoding));
  export_options.file_ending = options.file_ending;
  export_options.save_probabilities = options.save_probabilities;
  export_options.probabilities_format = options.probabilities_format;
  if (export_options.format == PredictionFormat::bitmask && num_channels > kMaxBitmaskChannels) {
    throw Error("the bitmask format holds at most 64 channels, the model has " + std::to_string(num_channels),
                "use --format multihot4d or --format per-channel");
  }
  run.format = to_string(export_options.format);

  PredictOptions predict = options.predict;
  predict.device = device;
  run.device = predict.device.str();
  const PrecisionChoice precision = resolve_precision(options.precision, device);
  predict.precision = precision.precision;
  run.precision = precision.reason;
  if (options.show_progress) std::cerr << "mlseg predict: precision " << precision.reason << "\n";
  const int threads = options.threads > 0 ? options.threads : default_thread_count();
  at::set_num_threads(threads);
  predict.threads = 1;  // resampling runs beside the network (next case, last case)

  InferencePlan plan = inference_plan_from_plans(model.plans, model.configuration);
  plan.resample.threads = 1;
  const SlidingWindowOptions window = sliding_window_options(model, plan, predict);
  // A cascade predicts through both stages: the previous stage's folds first, on every case.
  std::optional<PreviousStage> previous;
  if (!model.previous_stage.empty()) {
    previous = load_previous_stage(model_dir, model, options.folds, options.checkpoint, predict);
    run.checkpoints.insert(run.checkpoints.begin(), previous->checkpoints.begin(), previous->checkpoints.end());
    if (options.show_progress) {
      std::cerr << "mlseg predict: cascade: " << previous->checkpoints.size() << " " << model.previous_stage << " model(s), then "
                << models.size() << " " << model.configuration << " model(s)\n";
    }
  }
  std::vector<SegmentationNetwork> networks;
  for (auto& loaded : models) {
    loaded.network->module().eval();
    loaded.network->set_deep_supervision(false);
    if (predict.device != torch::Device(torch::kCPU)) loaded.network->module().to(predict.device);
    networks.push_back(loaded.network);
  }

  std::vector<InputCase> cases = list_input_cases(input, model.image_input_channels());
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  write_text_file_atomically(output_dir / "dataset.json", prediction_dataset_json(model, export_options).dump(2) + "\n");
  write_text_file_atomically(output_dir / kPredictionInfoFileName, prediction_info_json(model, export_options).dump(2) + "\n");
  ExportOptions lossless_options;
  lossless_options.format = num_channels <= kMaxBitmaskChannels ? PredictionFormat::bitmask : PredictionFormat::multihot4d;
  lossless_options.file_ending = options.file_ending;
  if (!options.lossless_copy_dir.empty()) {
    fs::create_directories(options.lossless_copy_dir, ec);
    write_text_file_atomically(options.lossless_copy_dir / "dataset.json",
                               prediction_dataset_json(model, lossless_options).dump(2) + "\n");
    write_text_file_atomically(options.lossless_copy_dir / kPredictionInfoFileName,
                               prediction_info_json(model, lossless_options).dump(2) + "\n");
  }
  if (options.world_size > 1) {
    // The split comes before --continue's file checks: it must not depend on what other ranks
    // have written so far.
    std::vector<InputCase> mine;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      if (static_cast<int>(i % static_cast<std::size_t>(options.world_size)) == options.rank) mine.push_back(std::move(cases[i]));
    }
    cases = std::move(mine);
  }
  if (options.continue_prediction) {
    // A killed run's half-written files (never under an output's name: writes are atomic). Not
    // with several ranks: the others' files in flight look the same.
    if (options.world_size == 1) {
      remove_stale_temporaries(output_dir);
      if (!options.lossless_copy_dir.empty()) remove_stale_temporaries(options.lossless_copy_dir);
    }
    std::vector<InputCase> todo;
    for (auto& c : cases) {
      if (fs::exists(prediction_output_path(output_dir, c.case_id, model, export_options), ec)) {
        ++run.skipped;
      } else {
        todo.push_back(std::move(c));
      }
    }
    cases = std::move(todo);
  }

  Progress progress("predict", static_cast<std::int64_t>(cases.size()), "cases", ProgressOptions{options.show_progress && !cases.empty()});
  struct Prepared {
    std::optional<PreprocessedImage> image;
    std::optional<Image> raw;  ///< a cascade's first stage preprocesses it again
    std::string error;
  };
  const bool cascade = previous.has_value();
  auto prepare = [&plan, cascade](const InputCase& c) {
    Prepared prepared;
    try {
      Image raw = read_input_case(c);
      prepared.image = preprocess_image(c.case_id, raw, plan);
      if (cascade) prepared.raw = std::move(raw);
    } catch (const std::exception& e) {
      prepared.error = error_message(e);
    }
    return prepared;
  };
  auto finish = [&](const std::string& case_id, torch::Tensor logits, CaseProperties properties, double seconds) {
    PredictRun::CaseResult result;
    result.case_id = case_id;
    result.seconds = seconds;
    PredictedCase predicted;
    predicted.case_id = case_id;
    predicted.encoding = encoding;
    predicted.channel_names = model.channel_names;
    predicted.geometry = properties.original_geometry;
    set_prediction(predicted, logits_to_original_probabilities(logits, properties, encoding, plan.anisotropy_threshold, 1));
    const ExportResult exported = export_prediction(predicted, output_dir, model, export_options);
    if (!options.lossless_copy_dir.empty()) export_prediction(predicted, options.lossless_copy_dir, model, lossless_options);
    result.files = exported.files;
    result.voxels_lost_overlap = exported.voxels_lost_overlap;
    fault_point("predict_case");
    return result;
  };

  // The slab path (memory_plan.h): code and probabilities built a few rows at a time, then exported.
  auto finish_in_slabs = [&](const std::string& case_id, const PreprocessedImage& image) {
    SlabPredictionOptions slab;
    slab.threads = threads;
    if (export_options.save_probabilities) slab.probabilities_npy = output_dir / (case_id + "_probabilities.npy");
    PredictedCase predicted = predict_case_in_slabs(networks, model, plan, image, window, slab, case_id);
    ExportOptions code_only = export_options;
    code_only.save_probabilities = false;  // written above
    const ExportResult exported = export_prediction(predicted, output_dir, model, code_only);
    if (!options.lossless_copy_dir.empty()) export_prediction(predicted, options.lossless_copy_dir, model, lossless_options);
    PredictRun::CaseResult result;
    result.case_id = case_id;
    if (!slab.probabilities_npy.empty()) result.files.push_back(slab.probabilities_npy);
    result.files.insert(result.files.end(), exported.files.begin(), exported.files.end());
    result.voxels_lost_overlap = exported.voxels_lost_overlap;
    fault_point("predict_case");
    return result;
  };

  std::future<Prepared> next;
  std::future<PredictRun::CaseResult> writing;
  std::string writing_case;
  auto collect_written = [&]() {
    if (!writing.valid()) return;
    try {
      PredictRun::CaseResult result = writing.get();
      run.voxels_lost_overlap += result.voxels_lost_overlap;
      run.cases.push_back(std::move(result));
      ++run.predicted;
    } catch (const std::exception& e) {
      run.failures.push_back({writing_case, error_message(e)});
    }
    progress.advance();
  };
  if (!cases.empty()) next = std::async(std::launch::async, prepare, cases.front());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto case_start = std::chrono::steady_clock::now();
    Prepared prepared = next.get();
    if (i + 1 < cases.size()) next = std::async(std::launch::async, prepare, cases[i + 1]);
    if (!prepared.image) {
      run.failures.push_back({cases[i].case_id, prepared.error});
      progress.advance();
      continue;
    }
    CaseMemoryPlan memory;
    torch::Tensor logits;
    try {
      if (previous) {
        prepared.image->image = cascade_input(*previous, *prepared.raw, *prepared.image, cases[i].case_id, threads);
        prepared.raw.reset();
      }
      memory = plan_case_memory(prepared.image->properties, model, plan.patch_size, export_options, options.memory_budget_gb);
      if (memory.strategy == PredictStrategy::slabs) {
        collect_written();  // the last case's memory first
        if (options.show_progress) std::cerr << "mlseg predict: " << cases[i].case_id << ": " << memory.describe() << "\n";
        PredictRun::CaseResult result = finish_in_slabs(cases[i].case_id, *prepared.image);
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - case_start).count();
        result.strategy = to_string(memory.strategy);
        result.estimated_peak_gb = memory.estimated_peak_gb();
        run.voxels_lost_overlap += result.voxels_lost_overlap;
        run.cases.push_back(std::move(result));
        ++run.predicted;
        progress.advance();
        continue;
      }
      logits = sliding_window_logits(networks, prepared.image->image, window);
    } catch (const std::exception& e) {
      run.failures.push_back({cases[i].case_id, error_message(e)});
      progress.advance();
      continue;
    }
    collect_written();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - case_start).count();
    writing_case = cases[i].case_id;
    writing = std::async(std::launch::async, [&finish, memory, case_id = cases[i].case_id, logits, properties = prepared.image->properties,
                                              seconds]() {
      PredictRun::CaseResult result = finish(case_id, logits, properties, seconds);
      result.strategy = to_string(memory.strategy);
      result.estimated_peak_gb = memory.estimated_peak_gb();
      return result;
    });
    logits = torch::Tensor();
  }
  collect_written();
  progress.finish();
  std::sort(run.failures.begin(), run.failures.end(), [](const auto& a, const auto& b) { return a.case_id < b.case_id; });
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

std::string format_predict_report(const PredictRun& run) {
  std::ostringstream out;
  out << "mlseg predict: " << run.predicted << " case(s) predicted";
  if (run.skipped) out << ", " << run.skipped << " already done (--continue)";
  out << " in " << format_duration(run.seconds) << " with " << run.checkpoints.size() << " model(s) on " << run.device;
  if (!run.precision.empty()) out << ", " << run.precision;
  out << "\n";
  out << "  format: " << run.format << " -> " << run.output_dir.string() << "\n";
  for (const auto& path : run.checkpoints) out << "  model: " << path.string() << "\n";
  if (run.format == "labelmap") {
    out << "  labelmap: " << run.voxels_lost_overlap << " voxel(s) lost an overlap (their channel set has no label)";
    if (run.voxels_lost_overlap > 0) out << "; --format bitmask, multihot4d or per-channel keep every channel";
    out << "\n";
    for (const auto& c : run.cases) {
      if (c.voxels_lost_overlap > 0) out << "    " << c.case_id << ": " << c.voxels_lost_overlap << " voxel(s)\n";
    }
  }
  for (const auto& f : run.failures) out << "  FAILED " << f.case_id << ": " << f.message << "\n";
  return out.str();
}

Json predict_run_to_json(const PredictRun& run) {
  Json json;
  json["model_dir"] = run.model_dir.string();
  json["output_dir"] = run.output_dir.string();
  Json checkpoints = Json::array();
  for (const auto& path : run.checkpoints) checkpoints.push_back(path.string());
  json["checkpoints"] = checkpoints;
  json["format"] = run.format;
  json["device"] = run.device;
  json["precision"] = run.precision;
  json["predicted"] = run.predicted;
  json["skipped"] = run.skipped;
  json["voxels_lost_overlap"] = run.voxels_lost_overlap;
  Json cases = Json::array();
  for (const auto& c : run.cases) {
    Json files = Json::array();
    for (const auto& f : c.files) files.push_back(f.string());
    cases.push_back({{"case", c.case_id},
                     {"files", files},
                     {"voxels_lost_overlap", c.voxels_lost_overlap},
                     {"seconds", c.seconds},
                     {"strategy", c.strategy},
                     {"estimated_peak_gb", c.estimated_peak_gb}});
  }
  json["cases"] = cases;
  Json failures = Json::array();
  for (const auto& f : run.failures) failures.push_back({{"case", f.case_id}, {"message", f.message}});
  json["failures"] = failures;
  json["seconds"] = run.seconds;
  return json;
}

}  // namespace mlseg
