#include "mlseg/training/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>

#include "mlseg/analysis/splits.h"
#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/fault_injection.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/run_lock.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/data/batch_loader.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/data/training_batches.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/nn/device.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/training/loss_deep_supervision.h"
#include "mlseg/training/run_setup.h"
#include "mlseg/training/train_log.h"
#include "mlseg/training/training_pipeline.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kLogFile = kTrainLogFile;
constexpr const char* kProgressPlot = "progress.svg";
constexpr const char* kLatest = "checkpoint_latest.pt";
constexpr const char* kBest = "checkpoint_best.pt";
constexpr const char* kFinal = "checkpoint_final.pt";

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// What a checkpoint records about the run, so --resume continues exactly.
struct RunState {
  std::int64_t next_epoch = 0;
  std::int64_t next_batch = 0;
  std::optional<double> ema, best_ema;
  std::int64_t best_epoch = -1;
  std::int64_t skipped_steps = 0;
};

Json run_state_to_json(const RunState& s, const TrainOptions& options) {
  Json json;
  json["next_epoch"] = s.next_epoch;
  json["next_batch_index"] = s.next_batch;
  json["ema_mean_dice"] = s.ema ? Json(*s.ema) : Json(nullptr);
  json["best_ema_mean_dice"] = s.best_ema ? Json(*s.best_ema) : Json(nullptr);
  json["best_epoch"] = s.best_epoch;
  json["skipped_steps"] = s.skipped_steps;
  json["seed"] = options.seed;
  json["fold"] = options.fold;
  json["epochs"] = options.epochs;
  json["iterations_per_epoch"] = options.iterations_per_epoch;
  json["optimizer"] = to_string(options.optimizer.kind());
  json["precision"] = to_string(options.precision);
  return json;
}

RunState run_state_from_json(const Json& json, const fs::path& path) {
  RunState s;
  try {
    const Json& t = json.at("training");
    s.next_epoch = t.at("next_epoch").get<std::int64_t>();
    s.next_batch = t.at("next_batch_index").get<std::int64_t>();
    if (!t.at("ema_mean_dice").is_null()) s.ema = t["ema_mean_dice"].get<double>();
    if (!t.at("best_ema_mean_dice").is_null()) s.best_ema = t["best_ema_mean_dice"].get<double>();
    s.best_epoch = t.value("best_epoch", std::int64_t{-1});
    s.skipped_steps = t.value("skipped_steps", std::int64_t{0});
  } catch (const nlohmann::json::exception&) {
    throw Error("the checkpoint has no training progress to resume from", "resume from checkpoint_latest.pt of `mlseg train`",
                {path.string(), "", ""});
  }
  return s;
}

void copy_parameters(SegmentationNetworkImpl& into, SegmentationNetworkImpl& from) {
  torch::NoGradGuard no_grad;
  auto source = from.module().named_parameters();
  for (auto& item : into.module().named_parameters()) item.value().copy_(source[item.key()]);
  auto source_buffers = from.module().named_buffers();
  for (auto& item : into.module().named_buffers()) item.value().copy_(source_buffers[item.key()]);
}

std::string shape_text(const PatchShapeZyx& shape, int dimension) {
  std::ostringstream out;
  if (dimension == 3) out << shape[0] << "x";
  out << shape[1] << "x" << shape[2];
  return out.str();
}


/// The trained state: network, optimizer, run progress and the epochs logged so far.
struct ModelState {
  SegmentationNetwork network;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  RunState state;
  std::vector<EpochRecord> records;
};

// Seeded initial weights and a fresh optimizer, then either --resume's checkpoint_latest (the log
// cut back to its epoch) or a clean fold folder.
ModelState start_or_resume(const RunSetup& run, const TrainOptions& options, const RunContext& context) {
  fs::create_directories(run.fold_dir);
  if (context.is_main()) remove_stale_temporaries(run.fold_dir);  // a killed run's half-written files
  ModelState m;
  torch::manual_seed(options.seed);  // the initial weights, reproducible by --seed
  m.network = run.network;
  m.network->initialize_weights();  // the same draws as at construction, now under --seed
  m.network->module().to(run.device);
  m.optimizer = make_optimizer(m.network->module(), options.optimizer);
  if (options.resume) {
    fs::path latest = run.fold_dir / kLatest;
    LoadedCheckpoint loaded;
    try {
      loaded = load_checkpoint(latest);
    } catch (const Error& error) {
      // A damaged or missing checkpoint_latest (killed while writing, full disk): the one before it.
      const fs::path previous = previous_checkpoint_path(latest);
      if (!fs::exists(previous)) throw;
      if (context.is_main()) {
        std::cout << "warning: " << error.what() << "\n  falling back to " << previous.string() << "\n";
      }
      latest = previous;
      loaded = load_checkpoint(latest);
    }
    if (loaded.model.configuration != options.configuration || loaded.model.channel_names != run.model.channel_names) {
      throw Error("checkpoint_latest.pt was trained on another configuration or channel set",
                  "resume with the same -c, or start over with --overwrite", {latest.string(), "", ""});
    }
    loaded.network->module().to(run.device);
    copy_parameters(*m.network, *loaded.network);
    load_optimizer_state(latest, *m.optimizer);
    m.state = run_state_from_json(loaded.metadata, latest);
    for (EpochRecord& r : read_epoch_records(run.log_path)) {
      if (r.epoch < m.state.next_epoch) m.records.push_back(std::move(r));
    }
    // Every rank read the same checkpoint; rank 0's epoch is the group's (a rank that read a
    // checkpoint being replaced would otherwise continue elsewhere).
    torch::Tensor next = torch::tensor({m.state.next_epoch, m.state.next_batch}, torch::kInt64);
    context.broadcast_from_main(next, "resume");
    if (next[0].item<std::int64_t>() != m.state.next_epoch || next[1].item<std::int64_t>() != m.state.next_batch) {
      throw Error(context.describe() + " read another checkpoint_latest.pt than rank 0",
                  "give every rank the same work folder (a shared file system) and rerun with --resume", {latest.string(), "", ""});
    }
    if (context.is_main()) {
      write_epoch_records(run.log_path, m.records);
      std::cout << "resuming " << run.fold.name << " at epoch " << m.state.next_epoch + 1 << " from " << latest.string() << "\n";
    }
  } else {
    context.main_first("checking the fold folder", [&] {
      const bool has_run = fs::exists(run.fold_dir / kLatest) || fs::exists(run.fold_dir / kFinal) || fs::exists(run.log_path);
      if (has_run && !options.overwrite) {
        throw Error(run.fold_dir.string() + " already holds a training run",
                    "pass --resume to continue it, or --overwrite to start over");
      }
      for (const char* name : {kLatest, kBest, kFinal, kLogFile, kProgressPlot}) {
        fs::remove(run.fold_dir / name);
        fs::remove(run.fold_dir / (std::string(name) + ".check"));
      }
      fs::remove(previous_checkpoint_path(run.fold_dir / kLatest));
      fs::remove(previous_checkpoint_path(run.fold_dir / kLatest).string() + ".check");
    });
  }
  // Rank 0's weights everywhere (the same seed gives the same ones; this makes it certain).
  std::vector<torch::Tensor> state = m.network->module().parameters();
  for (const torch::Tensor& buffer : m.network->module().buffers()) state.push_back(buffer);
  context.broadcast_tensors(state, "the initial weights");
  return m;
}

void print_run_header(const RunSetup& run, const TrainOptions& options, const ValidationSet& validation_set,
                      int loader_workers, const RunContext& context) {
  std::cout << "mlseg train: " << run.dataset.name << " " << options.configuration << " " << run.fold.name << ": "
            << run.fold.train.size() << " training / " << run.fold.val.size() << " validation cases; patch "
            << shape_text(run.patch, run.dimension) << ", batch " << run.batch_size << "; " << options.epochs
            << " epochs x " << options.iterations_per_epoch << " iterations; " << run.model.encoding.name() << " ("
            << run.model.channel_names.size() << " channels"
            << (run.model.encoding.kind() == EncodingKind::powerset
                    ? ", " + std::to_string(run.model.encoding.num_outputs()) + " combination classes"
                    : std::string())
            << "); " << run.device.str() << " ("
            << run.threads << " threads; loader workers: " << loader_workers << "), " << to_string(options.precision)
            << ", " << to_string(options.optimizer.kind()) << "\n";
  std::cout << "outputs: " << run.fold_dir.string() << "\n";
  if (context.distributed()) {
    std::cout << "data parallel: " << context.world_size() << " ranks (" << context.backend() << "), global batch "
              << run.batch_size << " split " << rank_batch_share(run.batch_size, context.world_size(), 0).size() << " on rank 0"
              << "; gradients averaged before clipping; validation shared, counts summed\n";
  }
  if (run.model.prior_channels > 0) {
    std::cout << "cascade: input = " << run.model.image_input_channels() << " image channel(s) + " << run.model.prior_channels << " "
              << run.model.previous_stage << " channel(s) (its cross-validation predictions, one per label channel)\n";
  }
  if (run.remedies.any()) {
    std::cout << "remedies for rare channels (--nnunet-defaults turns them off):\n";
    for (const std::string& line : run.remedies.active) std::cout << "  " << line << "\n";
  } else {
    std::cout << "remedies for rare channels: none (" << run.remedies.inactive_reason << ")\n";
  }
  if (options.nnunet_compatible_validation) {
    std::cout << "validation: nnU-Net-compatible (" << options.val_iterations
              << " fresh random foreground-biased batches per epoch)\n";
  }
  std::cout << format_coverage_table(validation_set, run.fold.name) << std::flush;
}

// One optimisation step on a make_step_batch batch. Returns the loss when the step was taken;
// nullopt when the loss or the gradient was not finite (the weights are then left untouched).
// The step reads the device once: the loss and the gradient norm in one host copy, which both
// the decision and the epoch's loss log need.
std::optional<double> train_step(ModelState& m, const Batch& batch, const RunSetup& run, const TrainOptions& options,
                                 const RunContext& context) {
  const torch::Tensor image = batch.tensors.at(0).to(run.device, /*non_blocking=*/true);
  std::vector<torch::Tensor> target_list, annotated_list;
  for (std::size_t i = 1; i + 1 < batch.tensors.size(); i += 2) {
    target_list.push_back(batch.tensors[i].to(run.device, /*non_blocking=*/true));
    const torch::Tensor& annotated = batch.tensors[i + 1];
    annotated_list.push_back(annotated.defined() ? annotated.to(run.device, /*non_blocking=*/true) : annotated);
  }
  m.optimizer->zero_grad();
  std::vector<torch::Tensor> outputs;
  {
    AutocastScope autocast(options.precision, run.device);
    outputs = m.network->forward(image);
  }
  for (torch::Tensor& o : outputs) o = o.to(torch::kFloat);
  torch::Tensor loss = deep_supervision_loss(outputs, target_list, annotated_list, run.loss_options);
  // A non-finite loss gives non-finite gradients, which are discarded below with the step.
  loss.backward();
  fault_point("train_step");
  // Several ranks: gradients and loss averaged before clipping, so every rank clips, decides and
  // steps identically (a non-finite value on any rank is non-finite in the average).
  context.average_gradients(m.network->module().parameters(), loss);
  const double clip = options.optimizer.gradient_clip_norm();
  const torch::Tensor norm = clip > 0 ? clip_gradient_norm(m.network->module().parameters(), clip) : torch::zeros({}, torch::kFloat);
  const torch::Tensor on_host =
      torch::stack({loss.detach().to(torch::kFloat), norm.to(loss.device(), torch::kFloat)}).to(torch::kCPU);  // the sync
  const double loss_value = on_host[0].item<double>();
  if (!std::isfinite(loss_value) || !std::isfinite(on_host[1].item<double>())) {
    m.optimizer->zero_grad();
    return std::nullopt;
  }
  m.optimizer->step();
  return loss_value;
}

/// The validation side of a run: the fixed patch set and how it is scored.
struct ValidationPlan {
  ValidationSetOptions set_options;
  ValidationSet set;
  ValidatorOptions validator;
};

ValidationPlan plan_validation(const RunSetup& run, const TrainOptions& options, const RunContext& context) {
  ValidationPlan v{ValidationSetOptions(run.batch_size, run.patch), {}, {}};
  v.set_options.iterations(options.val_iterations)
      .auto_iterations(options.val_iterations_auto)
      .min_patches_per_channel(options.nnunet_compatible_validation ? 0 : options.val_min_patches_per_channel)
      .seed(options.seed);
  v.set = build_validation_set(*run.store, run.fold.val, v.set_options);
  v.validator.encoding = run.model.encoding;
  v.validator.loss = run.loss_options;
  // Validation batches are split among the ranks (uneven counts): its loss stays per batch.
  v.validator.loss.batch_sum_across_ranks(nullptr);
  v.validator.empty_policy = options.empty_policy;
  v.validator.precision = options.precision;
  v.validator.device = run.device;
  v.validator.dimension = run.dimension;
  v.validator.ranks = &context;
  return v;
}

// Scores the epoch's network (--val-mode) into `record`, moves the EMA and marks a new best.
// Returns the seconds validation took.
double validate_epoch(EpochRecord& record, ModelState& m, DiceEma& ema, ValidationPlan& validation, const RunSetup& run,
                      const TrainOptions& options) {
  if (options.nnunet_compatible_validation) {
    // nnU-Net draws fresh foreground-biased patches every epoch.
    validation.set = build_validation_set(
        *run.store, run.fold.val,
        ValidationSetOptions(validation.set_options).seed(options.seed + 1 + static_cast<std::uint64_t>(record.epoch)));
  }
  if (options.val_mode != ValidationMode::full) {
    record.validation = run_validation(m.network, *run.store, validation.set, validation.validator);
  }
  if (options.val_mode != ValidationMode::patches) {
    ValidationResult full = run_full_case_validation(m.network, *run.store, run.fold.val, run.patch,
                                                     validation.set.coverage.cases_with_channel, validation.validator);
    if (options.val_mode == ValidationMode::full) {
      record.validation = std::move(full);
    } else {
      record.full_validation = std::move(full);
    }
  }
  record.ema_mean_dice = ema.update(record.validation->mean_dice);
  m.state.ema = record.ema_mean_dice;
  if (record.ema_mean_dice && (!m.state.best_ema || *record.ema_mean_dice > *m.state.best_ema)) {
    m.state.best_ema = record.ema_mean_dice;
    m.state.best_epoch = record.epoch;
    record.best = true;
  }
  return record.validation->seconds + (record.full_validation ? record.full_validation->seconds : 0.0);
}

// The epoch's training-patch counts of every rank, for the log.
void sum_sampling_over_ranks(EpochRecord& record, const RunContext& context) {
  if (!context.distributed()) return;
  std::vector<std::int64_t> values = record.train_patches_with_channel;
  values.push_back(record.train_patches);
  torch::Tensor totals = torch::tensor(values, torch::kInt64);
  context.all_reduce_sum(totals, "the epoch's patch counts");
  for (std::size_t c = 0; c < record.train_patches_with_channel.size(); ++c) {
    record.train_patches_with_channel[c] = totals[static_cast<std::int64_t>(c)].item<std::int64_t>();
  }
  record.train_patches = totals[static_cast<std::int64_t>(values.size() - 1)].item<std::int64_t>();
}

}  // namespace

ValidationMode parse_validation_mode(const std::string& name) {
  if (name == "patches") return ValidationMode::patches;
  if (name == "full") return ValidationMode::full;
  if (name == "both") return ValidationMode::both;
  throw Error("unknown --val-mode '" + name + "'", "use patches, full or both");
}

int parse_loader_workers(const std::string& text) {
  if (text == "auto") return kLoaderWorkersAuto;
  int workers = 0;
  if (!text.empty() && text.size() <= 4 && text.find_first_not_of("0123456789") == std::string::npos) workers = std::stoi(text);
  if (workers < 1) {
    throw Error("--loader-workers " + text + " is not a number of threads", "pass auto (cores - 1) or a number >= 1");
  }
  return workers;
}

std::string fold_folder_name(const std::string& fold) { return "fold_" + fold; }

TrainResult train(const fs::path& dataset_dir, const TrainOptions& options_in, const RunContext& context) {
  const auto start = Clock::now();
  TrainOptions options = options_in;
  options.show_progress = options_in.show_progress && context.is_main();  // rank 0 reports
  const RunSetup run = prepare_run(dataset_dir, options, context);
  torch::set_num_threads(run.threads);
  // One run per fold folder (rank 0 holds it for the group): a second one is refused, naming this one.
  std::optional<RunLock> fold_lock;
  context.main_first("locking the fold folder", [&] {
    fold_lock.emplace(run.fold_dir.parent_path() / ("." + run.fold_dir.filename().string() + ".lock"),
                      "training " + run.dataset.name + " " + options.configuration + " " + run.fold.name);
  });
  ModelState m = start_or_resume(run, options, context);
  DiceEma ema;
  ema.restore(m.state.ema);

  // Data: sampler + augmentation + loader over the training cases; the fixed validation set.
  const PreprocessedStore& store = *run.store;
  const TrainingPipeline pipeline = training_pipeline(run, options);
  const TrainingBatchOptions& batch_options = pipeline.batch_options;
  const PatchSampler sampler(store, pipeline.sampler_options, run.fold.train);
  SamplingReportAccumulator coverage(run.model.channel_names);
  LoaderOptions loader_options;
  if (options.loader_workers != kLoaderWorkersAuto) loader_options.workers(options.loader_workers);
  loader_options.first_batch(m.state.next_batch).pin_memory(run.device.is_cuda());
  BatchLoader loader([&](std::int64_t i) { return make_step_batch(store, sampler, batch_options, run, i, &coverage); },
                     loader_options);
  ValidationPlan validation = plan_validation(run, options, context);
  if (options.show_progress) print_run_header(run, options, validation.set, loader_options.workers(), context);

  auto save = [&](const char* name, bool with_optimizer) {
    if (!context.is_main()) return;
    Json metadata;
    metadata["training"] = run_state_to_json(m.state, options);
    // checkpoint_latest keeps the one it replaces, for --resume to fall back to.
    save_checkpoint(run.fold_dir / name, *m.network, run.model, metadata, with_optimizer ? m.optimizer.get() : nullptr,
                    /*keep_previous=*/std::string(name) == kLatest);
  };

  TrainResult result;
  result.fold_dir = run.fold_dir;
  result.encoding = run.model.encoding.name();
  result.remedies = run.remedies;
  result.stop_reason = "epochs";
  const double budget_s = options.time_budget_minutes * 60.0;
  double mean_step_s = 0, last_validation_s = 0, last_checkpoint_s = 1.0;
  std::int64_t steps_timed = 0;
  int nonfinite_in_a_row = 0;
  bool budget_spent = false;
  bool interrupted = false;  // --stop-after-epoch
  double epoch_seconds_sum = 0;
  std::int64_t latest_saved_at = -1;  // next_epoch of the last checkpoint_latest written
  std::int64_t epochs_this_run = 0;

  for (std::int64_t epoch = m.state.next_epoch; epoch < options.epochs && !budget_spent; ++epoch) {
    const auto epoch_start = Clock::now();
    EpochRecord record;
    record.epoch = epoch;
    record.channel_names = run.model.channel_names;
    record.remedies = run.remedies.active;
    record.lr = poly_learning_rate(options.optimizer, epoch, options.epochs);
    set_learning_rate(*m.optimizer, record.lr);
    coverage.reset();
    m.network->module().train();
    double loss_sum = 0;
    std::int64_t finite_steps = 0;
    std::unique_ptr<Progress> progress;
    if (options.show_progress) {
      progress = std::make_unique<Progress>("epoch " + std::to_string(epoch + 1), options.iterations_per_epoch, "iterations");
    }
    for (std::int64_t it = 0; it < options.iterations_per_epoch; ++it) {
      // Stop early enough to validate and write the checkpoints within the budget.
      // Rank 0's clock decides for all ranks.
      if (budget_s > 0 && context.main_decides((record.iterations > 0 || epochs_this_run > 0) &&
                                                   seconds_since(start) + mean_step_s + last_validation_s + 2 * last_checkpoint_s > budget_s,
                                               "the time budget")) {
        budget_spent = true;
        break;
      }
      const auto step_start = Clock::now();
      std::optional<Batch> batch = loader.next();
      record.data_wait_seconds += seconds_since(step_start);
      ++m.state.next_batch;
      if (const std::optional<double> loss = train_step(m, *batch, run, options, context)) {
        nonfinite_in_a_row = 0;
        loss_sum += *loss;
        ++finite_steps;
      } else {
        // A non-finite loss or gradient never reaches the weights.
        ++record.skipped_steps;
        ++m.state.skipped_steps;
        if (++nonfinite_in_a_row >= options.max_nonfinite_in_a_row) {
          save(kLatest, true);
          throw Error(std::to_string(nonfinite_in_a_row) + " training steps in a row had a non-finite loss or gradient (epoch " +
                          std::to_string(epoch + 1) + "); the weights were not updated by any of them",
                      "check the images for NaN/Inf (`mlseg verify`), lower the learning rate (--lr), or use --precision fp32");
        }
      }
      ++record.iterations;
      const double step_s = seconds_since(step_start);
      mean_step_s = (mean_step_s * static_cast<double>(steps_timed) + step_s) / static_cast<double>(steps_timed + 1);
      ++steps_timed;
      if (progress) progress->advance();
    }
    if (progress) progress->finish();
    progress.reset();
    // The budget ran out before this epoch's first step: the last epoch's validation and
    // checkpoints stand; an empty epoch is not recorded.
    if (budget_spent && record.iterations == 0) break;
    record.train_seconds = seconds_since(epoch_start);
    if (finite_steps > 0) record.train_loss = loss_sum / static_cast<double>(finite_steps);
    const SamplingReport sampled = coverage.report();
    record.train_patches = sampled.patches;
    record.train_patches_with_channel = sampled.patches_with_channel;
    sum_sampling_over_ranks(record, context);

    const bool last_epoch = epoch + 1 == options.epochs || budget_spent || epoch + 1 == options.stop_after_epoch;
    if ((epoch + 1) % std::max<std::int64_t>(1, options.val_every) == 0 || last_epoch) {
      last_validation_s = validate_epoch(record, m, ema, validation, run, options);
    } else {
      record.ema_mean_dice = ema.value();
    }
    m.state.next_epoch = epoch + 1;
    const auto checkpoint_start = Clock::now();
    const bool periodic = (epoch + 1) % std::max<std::int64_t>(1, options.checkpoint_every) == 0;
    if (record.best) save(kBest, false);
    if (periodic) {
      save(kLatest, true);
      latest_saved_at = m.state.next_epoch;
    }
    if (record.best || periodic) last_checkpoint_s = std::max(0.1, seconds_since(checkpoint_start));
    record.epoch_seconds = seconds_since(epoch_start);
    m.records.push_back(record);
    if (context.is_main()) {
      append_epoch_record(run.log_path, record);
      write_text_file_atomically(run.fold_dir / kProgressPlot, progress_svg(m.records));
    }
    ++epochs_this_run;
    epoch_seconds_sum += record.epoch_seconds;
    if (options.show_progress) {
      double eta = epoch_seconds_sum / static_cast<double>(epochs_this_run) * static_cast<double>(options.epochs - epoch - 1);
      if (budget_s > 0) eta = std::min(eta, std::max(0.0, budget_s - seconds_since(start)));
      std::cout << format_epoch_lines(record, options.epochs, eta) << std::flush;
    }
    if (record.validation) result.final_validation = record.validation;
    if (options.stop_after_epoch > 0 && epoch + 1 == options.stop_after_epoch && epoch + 1 < options.epochs) {
      interrupted = true;
      break;
    }
  }
  if (budget_spent) result.stop_reason = "time budget";
  if (interrupted) result.stop_reason = "stopped after epoch " + std::to_string(options.stop_after_epoch) + " (--resume continues)";
  // Not again when the last epoch just wrote it: checkpoint_latest.previous stays one epoch back.
  if (latest_saved_at != m.state.next_epoch) save(kLatest, true);
  if (!interrupted) save(kFinal, false);
  result.epochs_completed = m.state.next_epoch;
  result.best_ema = m.state.best_ema;
  result.best_epoch = m.state.best_epoch;
  result.skipped_steps = m.state.skipped_steps;
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace mlseg
