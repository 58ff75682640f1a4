#include "mlseg/training/validator.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "mlseg/core/fault_injection.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/inference/sliding_window.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/metrics/overlap_metrics.h"
#include "mlseg/metrics/tensor_metrics.h"
#include "mlseg/training/losses.h"

namespace mlseg {

MetricValue validation_dice(const ConfusionCounts& counts, bool present_in_validation_cases) {
  if (counts.tp + counts.fn == 0) {
    if (!present_in_validation_cases) return MetricValue::undefined(UndefinedReason::absent_from_validation);
    return MetricValue::undefined(counts.fp == 0 ? UndefinedReason::both_empty : UndefinedReason::ref_empty);
  }
  return dice_from_counts(counts);
}

namespace {

// Sums the pass's counts, patches per channel and patch count over the ranks (one int64
// all-reduce), so Dice comes from the global counts, never an average of per-rank Dice.
void sum_over_ranks(ValidationResult& result, const RunContext* ranks) {
  if (ranks == nullptr || !ranks->distributed()) return;
  const std::size_t channels = result.counts.size();
  torch::Tensor totals = torch::zeros({static_cast<std::int64_t>(channels * 5 + 1)}, torch::kInt64);
  auto* t = totals.data_ptr<std::int64_t>();
  for (std::size_t c = 0; c < channels; ++c) {
    t[5 * c] = result.counts[c].tp;
    t[5 * c + 1] = result.counts[c].fp;
    t[5 * c + 2] = result.counts[c].fn;
    t[5 * c + 3] = result.counts[c].tn;
    t[5 * c + 4] = result.patches_with_channel[c];
  }
  t[5 * channels] = result.patches;
  ranks->all_reduce_sum(totals, "the validation counts");
  t = totals.data_ptr<std::int64_t>();
  for (std::size_t c = 0; c < channels; ++c) {
    result.counts[c] = ConfusionCounts{t[5 * c], t[5 * c + 1], t[5 * c + 2], t[5 * c + 3]};
    result.patches_with_channel[c] = t[5 * c + 4];
  }
  result.patches = t[5 * channels];
}

}  // namespace

std::optional<double> mean_under_policy(const std::vector<MetricValue>& values, EmptyPolicy policy, int* count) {
  double sum = 0;
  int n = 0;
  const std::optional<double> substitute = empty_policy_substitute(policy);
  for (const MetricValue& v : values) {
    if (v.defined()) {
      sum += v.value();
      ++n;
    } else if (substitute) {
      sum += *substitute;
      ++n;
    }
  }
  if (count != nullptr) *count = n;
  if (n == 0) return std::nullopt;
  return sum / n;
}

ValidationResult run_validation(const SegmentationNetwork& network, const PreprocessedStore& store, const ValidationSet& set,
                                const ValidatorOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int channels = store.num_channels();
  ValidationResult result;
  result.channel_names = store.info().channel_names;
  result.counts.assign(static_cast<std::size_t>(channels), {});
  result.patches_with_channel.assign(static_cast<std::size_t>(channels), 0);

  const bool had_deep_supervision = network->deep_supervision();
  network->set_deep_supervision(false);
  torch::NoGradGuard no_grad;
  const PatchShapeZyx shape = set.patch_size_zyx;
  // Summed on the device and read once after the pass: no wait for the GPU per batch for the loss.
  const auto on_device = torch::TensorOptions().device(options.device);
  torch::Tensor loss_sum = torch::zeros({}, on_device.dtype(torch::kDouble));
  torch::Tensor loss_batches = torch::zeros({}, on_device.dtype(torch::kDouble));
  const std::vector<std::array<double, 3>> full_resolution{{1.0, 1.0, 1.0}};
  std::int64_t batch_number = -1;
  for (std::size_t first = 0; first < set.patches.size(); first += static_cast<std::size_t>(set.batch_size)) {
    if (options.ranks != nullptr && !options.ranks->owns(++batch_number)) continue;
    const std::size_t last = std::min(set.patches.size(), first + static_cast<std::size_t>(set.batch_size));
    std::vector<torch::Tensor> images, codes;
    for (std::size_t i = first; i < last; ++i) {
      const ValidationPatch& p = set.patches[i];
      CutPatch cut = store.cut_patch(p.case_index, p.begin_zyx, shape);
      images.push_back(cut.image);
      codes.push_back(cut.codes.words);
    }
    const torch::Tensor image = torch::stack(images).to(options.device, /*non_blocking=*/true);
    const torch::Tensor code = torch::stack(codes);
    torch::Tensor logits;
    {
      AutocastScope autocast(options.precision, options.device);
      logits = network->forward(network_input(image, options.dimension))[0];
    }
    logits = logits.to(torch::kFloat);
    const std::vector<ScaleTargets> targets =
        batch_targets(code, options.encoding, full_resolution, options.dimension, options.device);
    const torch::Tensor loss = segmentation_loss(logits, targets[0].target, targets[0].annotated, options.loss).to(torch::kDouble);
    const torch::Tensor finite = torch::isfinite(loss);
    loss_sum.add_(torch::where(finite, loss, torch::zeros_like(loss)));
    loss_batches.add_(finite.to(torch::kDouble));
    // The counts come from the metrics engine on the host, as `evaluate` counts (one engine).
    const torch::Tensor predicted = options.encoding.channel_masks_from_logits(network_output_5d(logits, options.dimension)).cpu();
    for (std::int64_t b = 0; b < code.size(0); ++b) {
      const CodeVolume reference{code[b], channels};
      const torch::Tensor ignored = ignore_mask(reference);
      add_counts(result.counts, count_confusion_masks(predicted[b], decode_channels(reference), ignored));
      const std::vector<bool> has = count_channels_in_patch(reference);
      for (int c = 0; c < channels; ++c) result.patches_with_channel[static_cast<std::size_t>(c)] += has[static_cast<std::size_t>(c)] ? 1 : 0;
      ++result.patches;
    }
    fault_point("validation");
  }
  network->set_deep_supervision(had_deep_supervision);
  sum_over_ranks(result, options.ranks);

  for (int c = 0; c < channels; ++c) {
    result.dice.push_back(validation_dice(result.counts[static_cast<std::size_t>(c)], set.coverage.present(c)));
  }
  result.mean_dice = mean_under_policy(result.dice, options.empty_policy, &result.channels_in_mean);
  torch::Tensor loss_totals = torch::stack({loss_sum, loss_batches}).to(torch::kCPU);
  if (options.ranks != nullptr) options.ranks->all_reduce_sum(loss_totals, "the validation loss");
  const double finite_batches = loss_totals[1].item<double>();
  if (finite_batches > 0) result.loss = loss_totals[0].item<double>() / finite_batches;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

ValidationResult run_full_case_validation(const SegmentationNetwork& network, const PreprocessedStore& store,
                                          const std::vector<std::size_t>& case_indices, const PatchShapeZyx& patch_zyx,
                                          const std::vector<std::int64_t>& cases_with_channel,
                                          const ValidatorOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int channels = store.num_channels();
  ValidationResult result;
  result.kind = "full_cases";
  result.channel_names = store.info().channel_names;
  result.counts.assign(static_cast<std::size_t>(channels), {});
  result.patches_with_channel.assign(static_cast<std::size_t>(channels), 0);
  std::vector<std::int64_t> tile(patch_zyx.begin(), patch_zyx.end());
  if (options.dimension == 2) tile = {patch_zyx[1], patch_zyx[2]};
  const SlidingWindowOptions window = SlidingWindowOptions(tile).device(options.device);
  std::int64_t case_number = -1;
  for (std::size_t case_index : case_indices) {
    if (options.ranks != nullptr && !options.ranks->owns(++case_number)) continue;
    const StoredCase& stored = store.stored_case(case_index);
    torch::Tensor logits;
    {
      AutocastScope autocast(options.precision, options.device);
      logits = sliding_window_logits(std::vector<SegmentationNetwork>{network}, stored.network_input(), window);
    }
    const torch::Tensor predicted = options.encoding.channel_masks_from_logits(logits.to(torch::kFloat).unsqueeze(0))[0];
    const CodeVolume reference = stored.codes();
    add_counts(result.counts, count_confusion_masks(predicted, decode_channels(reference), ignore_mask(reference)));
    const std::vector<bool> has = count_channels_in_patch(reference);
    for (int c = 0; c < channels; ++c) result.patches_with_channel[static_cast<std::size_t>(c)] += has[static_cast<std::size_t>(c)] ? 1 : 0;
    ++result.patches;
  }
  sum_over_ranks(result, options.ranks);
  for (int c = 0; c < channels; ++c) {
    result.dice.push_back(validation_dice(result.counts[static_cast<std::size_t>(c)],
                                          cases_with_channel.at(static_cast<std::size_t>(c)) > 0));
  }
  result.mean_dice = mean_under_policy(result.dice, options.empty_policy, &result.channels_in_mean);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::optional<double> DiceEma::update(const std::optional<double>& mean) {
  if (!mean || !std::isfinite(*mean)) return value_;
  value_ = value_ ? alpha_ * *value_ + (1.0 - alpha_) * *mean : *mean;
  return value_;
}

std::string format_mean(const std::optional<double>& mean, int channels_in_mean, int channels) {
  std::ostringstream out;
  if (!mean) return "n/a (no channel has a value)";
  out.setf(std::ios::fixed);
  out.precision(4);
  out << *mean << " (" << channels_in_mean << " of " << channels << " channels)";
  return out.str();
}

}  // namespace mlseg
