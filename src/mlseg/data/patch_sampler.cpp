#include "mlseg/data/patch_sampler.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "mlseg/core/error.h"
#include "mlseg/core/random.h"
#include "mlseg/data/preprocessed_store.h"

namespace mlseg {
namespace {

constexpr const char* kOptionsFix = "fix the sampler options (SamplerOptions / the train command's flags)";

/// Index i with probability (cumulative[i] - cumulative[i-1]) / cumulative.back().
std::size_t draw_cumulative(const std::vector<double>& cumulative, SplitMix64& rng) {
  const double u = rng.uniform() * cumulative.back();
  const auto at = std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
  return std::min(static_cast<std::size_t>(at), cumulative.size() - 1);
}

std::vector<double> cumulative_of(const std::vector<double>& weights) {
  std::vector<double> cumulative(weights.size());
  double sum = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) cumulative[i] = (sum += weights[i]);
  return cumulative;
}

bool is_channel_group(const LocationGroup& group) { return group.kind == "channel" && group.count > 0; }
bool is_rare_group(const LocationGroup& group) { return group.kind == "combination" && group.rare && group.count > 0; }

template <typename T>
std::uint64_t or_reduce(const T* values, std::int64_t count) {
  using Unsigned = std::make_unsigned_t<T>;
  Unsigned accumulated = 0;
  for (std::int64_t i = 0; i < count; ++i) accumulated |= static_cast<Unsigned>(values[i]);
  return static_cast<std::uint64_t>(accumulated);
}

}  // namespace

PatchSampler::PatchSampler(const PreprocessedStore& store, SamplerOptions options, std::vector<std::size_t> case_indices)
    : store_(store), options_(std::move(options)), case_indices_(std::move(case_indices)) {
  const int num_channels = store_.num_channels();
  if (options_.batch_size() < 1) throw Error("batch_size must be at least 1", kOptionsFix);
  auto& final_patch = options_.final_patch_size_zyx();
  if (final_patch == PatchShapeZyx{0, 0, 0}) final_patch = options_.patch_size_zyx();
  for (int d = 0; d < 3; ++d) {
    if (options_.patch_size_zyx()[d] < 1 || final_patch[d] < 1 || final_patch[d] > options_.patch_size_zyx()[d]) {
      throw Error("patch sizes must be at least 1 and final_patch_size_zyx must not exceed patch_size_zyx", kOptionsFix);
    }
  }
  if (!(options_.foreground_oversample() >= 0 && options_.foreground_oversample() <= 1) ||
      !(options_.target_rare_combinations() >= 0 && options_.target_rare_combinations() <= 1)) {
    throw Error("foreground_oversample and target_rare_combinations are probabilities in [0, 1]", kOptionsFix);
  }
  const bool weighted_forced = options_.forced_channel_weights() != ForcedChannelWeights::uniform;
  const bool weighted_cases = options_.case_sampling() == CaseSampling::weighted;
  const auto& weights = options_.channel_weights();
  if (weighted_forced || weighted_cases) {
    if (static_cast<int>(weights.size()) != num_channels) {
      throw Error("channel_weights has " + std::to_string(weights.size()) + " values but the store has " +
                      std::to_string(num_channels) + " channels",
                  "pass one weight per channel (analyze's labels.json \"sampling_weight\", or plans.json \"sampling_weights\")");
    }
    for (const double w : weights) {
      if (!(w >= 0) || !std::isfinite(w)) throw Error("channel weights must be finite and >= 0", kOptionsFix);
    }
  }
  if (case_indices_.empty()) {
    for (std::size_t i = 0; i < store_.num_cases(); ++i) case_indices_.push_back(i);
  }
  if (case_indices_.empty()) {
    throw Error("there are no cases to sample patches from", "check the store and the fold's training cases")
        .located({store_.dir().string(), "", ""});
  }

  cases_of_channel_.assign(num_channels, {});
  std::vector<std::vector<int>> present(case_indices_.size());
  for (std::size_t pos = 0; pos < case_indices_.size(); ++pos) {
    const StoredCase& stored = store_.stored_case(case_indices_[pos]);
    for (const auto& group : stored.properties().locations) {
      if (!is_channel_group(group)) continue;
      present[pos].push_back(group.channel);
      auto& list = cases_of_channel_[group.channel];
      if (list.empty() || list.back() != pos) list.push_back(pos);
    }
  }

  std::vector<double> case_weights(case_indices_.size(), 1.0);
  if (weighted_cases) {
    double smallest_positive = 0;
    for (const double w : weights) {
      if (w > 0 && (smallest_positive == 0 || w < smallest_positive)) smallest_positive = w;
    }
    for (std::size_t pos = 0; pos < case_indices_.size(); ++pos) {
      double weight = present[pos].empty() ? smallest_positive : 0.0;
      for (const int c : present[pos]) weight = std::max(weight, weights[c]);
      case_weights[pos] = weight;
    }
    if (*std::max_element(case_weights.begin(), case_weights.end()) <= 0) {
      throw Error("every case has weight 0 (all channel weights are 0)", "give at least one channel a positive weight");
    }
  }
  case_cumulative_ = cumulative_of(case_weights);
  case_probabilities_.resize(case_weights.size());
  for (std::size_t pos = 0; pos < case_weights.size(); ++pos) case_probabilities_[pos] = case_weights[pos] / case_cumulative_.back();

  if (weighted_forced) {
    std::vector<double> channel_weights;
    bool any_present = false;
    for (int c = 0; c < num_channels; ++c) {
      if (cases_of_channel_[c].empty()) continue;
      any_present = true;
      if (weights[c] <= 0) continue;
      channels_with_cases_.push_back(c);
      channel_weights.push_back(weights[c]);
    }
    if (any_present && channels_with_cases_.empty()) {
      throw Error("every channel present in the sampled cases has weight 0", "give at least one present channel a positive weight");
    }
    channel_cumulative_ = cumulative_of(channel_weights);
  }
  // Python's round() rounds half to even, as nearbyint does in the default rounding mode.
  first_forced_ = static_cast<std::int64_t>(
      std::nearbyint(static_cast<double>(options_.batch_size()) * (1.0 - options_.foreground_oversample())));
}

bool PatchSampler::is_forced(std::int64_t sample_in_batch) const { return sample_in_batch >= first_forced_; }

std::int64_t PatchSampler::forced_per_batch() const {
  return std::max<std::int64_t>(0, options_.batch_size() - first_forced_);
}

double PatchSampler::forced_fraction() const {
  return static_cast<double>(forced_per_batch()) / static_cast<double>(options_.batch_size());
}

CornerBounds PatchSampler::corner_bounds(const PatchShapeZyx& shape) const {
  CornerBounds bounds;
  const auto& patch = options_.patch_size_zyx();
  const auto& final_patch = options_.final_patch_size_zyx();
  for (int d = 0; d < 3; ++d) {
    // nnU-Net get_bbox: pad by patch - final_patch, more when the case is smaller than the patch;
    // the lower corner then ranges over [-ceil(pad/2), shape + ceil(pad/2) - patch].
    std::int64_t need_to_pad = patch[d] - final_patch[d];
    if (need_to_pad + shape[d] < patch[d]) need_to_pad = patch[d] - shape[d];
    bounds.lower[d] = -((need_to_pad + 1) / 2);
    bounds.upper[d] = shape[d] + need_to_pad / 2 + need_to_pad % 2 - patch[d];
  }
  return bounds;
}

std::vector<PatchDraw> PatchSampler::sample_batch(std::int64_t batch_index) const {
  std::vector<PatchDraw> draws;
  draws.reserve(static_cast<std::size_t>(options_.batch_size()));
  for (std::int64_t j = 0; j < options_.batch_size(); ++j) draws.push_back(sample(batch_index, j));
  return draws;
}

PatchDraw PatchSampler::sample(std::int64_t batch_index, std::int64_t sample_in_batch) const {
  // One independent stream per (seed, batch, sample): draws never depend on order or thread.
  SplitMix64 rng(stream_seed(options_.seed(), batch_index, sample_in_batch));
  PatchDraw draw;
  draw.forced = is_forced(sample_in_batch);

  int wanted_channel = -1;
  std::size_t pos = 0;
  if (draw.forced && !channel_cumulative_.empty()) {
    wanted_channel = channels_with_cases_[draw_cumulative(channel_cumulative_, rng)];
    const auto& cases = cases_of_channel_[wanted_channel];
    pos = cases[rng.below(cases.size())];
  } else if (options_.case_sampling() == CaseSampling::uniform) {
    pos = rng.below(case_indices_.size());
  } else {
    pos = draw_cumulative(case_cumulative_, rng);
  }
  draw.case_index = case_indices_[pos];
  const StoredCase& stored = store_.stored_case(draw.case_index);
  const auto& groups = stored.properties().locations;
  const auto& patch = options_.patch_size_zyx();
  const CornerBounds bounds = corner_bounds(stored.shape_zyx());

  auto random_corner = [&] {
    for (int d = 0; d < 3; ++d) {
      draw.begin_zyx[d] = bounds.lower[d] + static_cast<std::int64_t>(rng.below(static_cast<std::size_t>(bounds.upper[d] - bounds.lower[d] + 1)));
    }
  };
  // nnU-Net centres on the voxel and clamps only the lower corner (the patch may overhang the end).
  auto centre_on_row = [&](std::int64_t row) {
    draw.location_zyx = stored.location(row);
    for (int d = 0; d < 3; ++d) draw.begin_zyx[d] = std::max(bounds.lower[d], draw.location_zyx[d] - patch[d] / 2);
  };

  if (draw.forced) {
    int group = -1;
    const bool want_rare = rng.uniform() < options_.target_rare_combinations();
    if (want_rare) {
      std::vector<int> rare;
      for (std::size_t g = 0; g < groups.size(); ++g) {
        if (is_rare_group(groups[g])) rare.push_back(static_cast<int>(g));
      }
      if (!rare.empty()) group = rare[rng.below(rare.size())];
    }
    if (group < 0) {
      std::vector<int> eligible;
      for (std::size_t g = 0; g < groups.size(); ++g) {
        if (is_channel_group(groups[g]) && (wanted_channel < 0 || groups[g].channel == wanted_channel)) {
          eligible.push_back(static_cast<int>(g));
        }
      }
      if (!eligible.empty()) group = eligible[rng.below(eligible.size())];
    }
    if (group >= 0) {
      draw.forced_group = group;
      draw.forced_channel = groups[group].kind == "channel" ? groups[group].channel : -1;
      centre_on_row(groups[group].offset + static_cast<std::int64_t>(rng.below(static_cast<std::size_t>(groups[group].count))));
    } else {
      random_corner();  // nnU-Net: a case without foreground falls back to a random crop
    }
    return draw;
  }

  random_corner();
  if (!store_.info().has_ignore) return draw;
  for (int attempt = 0; attempt < options_.ignore_rejection_tries(); ++attempt) {
    if (attempt > 0) random_corner();
    PatchShapeZyx centre{};
    bool inside = true;
    for (int d = 0; d < 3; ++d) {
      centre[d] = draw.begin_zyx[d] + patch[d] / 2;
      inside = inside && centre[d] >= 0 && centre[d] < stored.shape_zyx()[d];
    }
    if (inside && !stored.is_ignored(centre)) return draw;
  }
  std::int64_t annotated_rows = 0;
  for (const auto& group : groups) annotated_rows += is_channel_group(group) ? group.count : 0;
  if (annotated_rows == 0) return draw;
  std::int64_t pick = static_cast<std::int64_t>(rng.below(static_cast<std::size_t>(annotated_rows)));
  for (const auto& group : groups) {
    if (!is_channel_group(group)) continue;
    if (pick < group.count) {
      centre_on_row(group.offset + pick);
      break;
    }
    pick -= group.count;
  }
  return draw;
}

std::vector<bool> count_channels_in_patch(const CodeVolume& patch_codes) {
  const torch::Tensor words = patch_codes.words.contiguous();
  const std::int64_t num_words = words.size(0);
  const std::int64_t per_word = num_words > 0 ? words.numel() / num_words : 0;
  const int bits_per_word = static_cast<int>(words.element_size() * 8);
  std::vector<bool> present(static_cast<std::size_t>(patch_codes.num_channels), false);
  for (std::int64_t w = 0; w < num_words; ++w) {
    std::uint64_t bits = 0;
    switch (words.scalar_type()) {
      case torch::kUInt8: bits = or_reduce(words.data_ptr<std::uint8_t>() + w * per_word, per_word); break;
      case torch::kInt16: bits = or_reduce(words.data_ptr<std::int16_t>() + w * per_word, per_word); break;
      case torch::kInt: bits = or_reduce(words.data_ptr<std::int32_t>() + w * per_word, per_word); break;
      case torch::kLong: bits = or_reduce(words.data_ptr<std::int64_t>() + w * per_word, per_word); break;
      default:
        throw Error(std::string("channel codes of type ") + c10::toString(words.scalar_type()) + " are not supported",
                    "codes are uint8, int16, int32 or int64 (labels/label_code.h)");
    }
    for (int b = 0; b < bits_per_word; ++b) {
      const std::int64_t channel = w * bits_per_word + b;
      if (channel < patch_codes.num_channels && ((bits >> b) & 1u)) present[static_cast<std::size_t>(channel)] = true;
    }
  }
  return present;
}

double SamplingReport::channel_share(int channel) const {
  return patches > 0 ? static_cast<double>(patches_with_channel.at(channel)) / static_cast<double>(patches) : 0.0;
}

SamplingReportAccumulator::SamplingReportAccumulator(std::vector<std::string> channel_names) {
  report_.channel_names = std::move(channel_names);
  reset();
}

void SamplingReportAccumulator::add(const CodeVolume& patch_codes, const PatchDraw& draw) {
  const std::vector<bool> present = count_channels_in_patch(patch_codes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++report_.patches;
  for (std::size_t c = 0; c < present.size() && c < report_.patches_with_channel.size(); ++c) {
    report_.patches_with_channel[c] += present[c] ? 1 : 0;
  }
  if (!draw.forced) return;
  ++report_.forced_patches;
  if (draw.forced_group < 0) {
    ++report_.forced_without_foreground;
  } else if (draw.forced_channel < 0) {
    ++report_.forced_on_combination;
  } else if (draw.forced_channel < static_cast<int>(report_.forced_on_channel.size())) {
    ++report_.forced_on_channel[draw.forced_channel];
  }
}

SamplingReport SamplingReportAccumulator::report() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return report_;
}

void SamplingReportAccumulator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names = std::move(report_.channel_names);
  const auto count = names.size();
  report_ = SamplingReport{};
  report_.channel_names = std::move(names);
  report_.patches_with_channel.assign(count, 0);
  report_.forced_on_channel.assign(count, 0);
}

}  // namespace mlseg
