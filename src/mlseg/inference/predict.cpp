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
