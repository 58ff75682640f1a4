#include "mlseg/analysis/analyze.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>

#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/random.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"

namespace mlseg {
namespace fs = std::filesystem;

double CaseFingerprint::voxel_volume_ml() const {
  return spacing_zyx_mm[0] * spacing_zyx_mm[1] * spacing_zyx_mm[2] / 1000.0;
}

namespace {

// A foreground intensity drawn `weight` times by the sampler.
struct WeightedSample {
  float value;
  std::uint32_t weight;
};

// One case: fingerprint, label counts, and its share of foreground intensity samples.
struct CaseWork {
  CaseFingerprint fingerprint;
  std::vector<std::vector<WeightedSample>> samples;  // per image channel
  std::string error;
};

std::array<std::int64_t, 3> nonzero_box_shape(const torch::Tensor& images) {
  const torch::Tensor nonzero = images.ne(0).any(0);  // [Z, Y, X]
  std::array<std::int64_t, 3> shape{0, 0, 0};
  for (int axis = 0; axis < 3; ++axis) {
    std::vector<std::int64_t> others;
    for (int other = 0; other < 3; ++other) {
      if (other != axis) others.push_back(other);
    }
    const torch::Tensor profile = nonzero.any(others[1]).any(others[0]);
    const torch::Tensor where = profile.nonzero();
    if (where.numel() == 0) return {0, 0, 0};
    shape[axis] = where.max().item<std::int64_t>() - where.min().item<std::int64_t>() + 1;
  }
  return shape;
}

void analyse_case(const Dataset& dataset, const CaseFiles& files, std::size_t index, std::int64_t samples_per_case,
                  std::uint64_t seed, CaseWork& work) {
  CaseFingerprint& fp = work.fingerprint;
  fp.case_id = files.case_id;
  const Image images = read_case_images(dataset, files);
  const CaseLabels labels = read_case_labels(dataset, files);
  if (labels.code.shape_zyx() != images.shape_zyx()) {
    throw Error("label shape " + format_shape(labels.code.shape_zyx()) + " differs from the image shape " +
                    format_shape(images.shape_zyx()),
                "run `mlseg verify` on the dataset and fix the reported problems", {"", files.case_id, ""});
  }
  fp.shape_zyx = images.shape_zyx();
  fp.spacing_zyx_mm = images.geometry.spacing_zyx_mm;
  fp.shape_after_crop_zyx = nonzero_box_shape(images.data);
  fp.combinations = count_combinations(labels.code);
  const int num_channels = labels.code.num_channels;
  fp.channel_voxels.assign(num_channels, 0);
  for (const auto& [key, voxels] : fp.combinations.voxels) {
    const auto channels = channels_of(key, num_channels);
    for (int c : channels) fp.channel_voxels[c] += voxels;
    if (!channels.empty()) fp.foreground_voxels += voxels;
    if (has_ignore_flag(key, num_channels)) fp.ignore_voxels += voxels;
  }
  // Foreground intensity samples: `samples_per_case` draws with replacement, as nnU-Net's
  // fingerprint extractor makes them. Draws are kept as (voxel, times drawn), which gives the very
  // same sample without materialising 10^8 values or gathering them from random addresses.
  work.samples.assign(images.num_channels(), {});
  if (fp.foreground_voxels == 0 || samples_per_case <= 0) return;
  const torch::Tensor decoded = decode_channels(labels.code);
  const torch::Tensor foreground = decoded.amax(0).flatten();
  const torch::Tensor positions = foreground.nonzero().flatten().contiguous();
  const auto* position = positions.data_ptr<std::int64_t>();
  const auto count = static_cast<std::uint64_t>(positions.numel());
  SplitMix64 random(seed * 0x100000001b3ULL + index);
  std::vector<std::pair<std::int64_t, std::uint32_t>> drawn;  // (voxel, times drawn)
  if (count <= static_cast<std::uint64_t>(samples_per_case)) {
    std::vector<std::uint32_t> times(count, 0);
    for (std::int64_t k = 0; k < samples_per_case; ++k) ++times[random.next() % count];
    for (std::uint64_t i = 0; i < count; ++i) {
      if (times[i]) drawn.emplace_back(position[i], times[i]);
    }
  } else {
    for (std::int64_t k = 0; k < samples_per_case; ++k) drawn.emplace_back(position[random.next() % count], 1);
  }
  const torch::Tensor flat = images.data.reshape({images.num_channels(), -1}).contiguous();
  for (std::int64_t m = 0; m < images.num_channels(); ++m) {
    const float* values = flat[m].data_ptr<float>();
    auto& out = work.samples[m];
    out.reserve(drawn.size());
    for (const auto& [voxel, times] : drawn) out.push_back({values[voxel], times});
  }
}

// numpy.percentile's default (linear interpolation between order statistics) on the sample in
// which each value appears `weight` times; `sorted` is ordered by value, `cumulative` holds
// running weight totals.
double weighted_percentile(const std::vector<WeightedSample>& sorted, const std::vector<std::uint64_t>& cumulative,
                           double q) {
  const std::uint64_t total = cumulative.back();
  const double position = q / 100.0 * static_cast<double>(total - 1);
  const auto lower = static_cast<std::uint64_t>(std::floor(position));
  auto value_at = [&](std::uint64_t rank) {  // rank-th smallest (0-based) of the expanded sample
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), rank);
    return static_cast<double>(sorted[static_cast<std::size_t>(it - cumulative.begin())].value);
  };
  const double low = value_at(lower);
  if (lower + 1 >= total) return low;
  return low + (value_at(lower + 1) - low) * (position - static_cast<double>(lower));
}

IntensityStatistics intensity_statistics(std::vector<WeightedSample> samples) {
  IntensityStatistics stats;
  if (samples.empty()) return stats;
  std::sort(samples.begin(), samples.end(), [](const auto& a, const auto& b) { return a.value < b.value; });
  std::vector<std::uint64_t> cumulative(samples.size());
  std::uint64_t running = 0;
  double sum = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    running += samples[i].weight;
    cumulative[i] = running;
    sum += static_cast<double>(samples[i].value) * samples[i].weight;
  }
  stats.defined = true;
  stats.num_samples = static_cast<std::int64_t>(running);
  stats.mean = sum / static_cast<double>(running);
  double squares = 0;
  for (const auto& sample : samples) {
    const double d = sample.value - stats.mean;
    squares += d * d * sample.weight;
  }
  stats.std = std::sqrt(squares / static_cast<double>(running));
  stats.min = samples.front().value;
  stats.max = samples.back().value;
  stats.median = weighted_percentile(samples, cumulative, 50.0);
  stats.percentile_00_5 = weighted_percentile(samples, cumulative, 0.5);
  stats.percentile_99_5 = weighted_percentile(samples, cumulative, 99.5);
  return stats;
}

double median_of(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void compute_channel_statistics(AnalysisResult& result, const AnalyzeOptions& options) {
  const int num_channels = static_cast<int>(result.channel_names.size());
  const auto num_cases = static_cast<double>(result.cases.size());
  std::int64_t all_voxels = 0, foreground_voxels = 0;
  for (const auto& fp : result.cases) {
    all_voxels += fp.shape_zyx[0] * fp.shape_zyx[1] * fp.shape_zyx[2];
    foreground_voxels += fp.foreground_voxels;
  }
  result.channels.assign(num_channels, {});
  std::vector<double> selection(num_channels, 0.0);
  for (const auto& fp : result.cases) {
    const auto present = std::count_if(fp.channel_voxels.begin(), fp.channel_voxels.end(), [](auto v) { return v > 0; });
    for (int c = 0; c < num_channels; ++c) {
      if (fp.channel_voxels[c] > 0) selection[c] += 1.0 / static_cast<double>(present) / num_cases;
    }
  }
  double weight_sum = 0;
  int weighted = 0;
  for (int c = 0; c < num_channels; ++c) {
    ChannelStatistics& ch = result.channels[c];
    ch.name = result.channel_names[c];
    std::vector<double> voxels, ml, fractions;
    for (const auto& fp : result.cases) {
      const std::int64_t v = fp.channel_voxels[c];
      ch.voxels += v;
      if (v == 0) continue;
      ++ch.cases_present;
      voxels.push_back(static_cast<double>(v));
      ml.push_back(static_cast<double>(v) * fp.voxel_volume_ml());
      fractions.push_back(static_cast<double>(v) / static_cast<double>(fp.shape_zyx[0] * fp.shape_zyx[1] * fp.shape_zyx[2]));
    }
    if (!voxels.empty()) {
      auto mean = [](const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0) / x.size(); };
      ch.volume_voxels_mean = mean(voxels);
      ch.volume_voxels_median = median_of(voxels);
      ch.volume_voxels_min = *std::min_element(voxels.begin(), voxels.end());
      ch.volume_voxels_max = *std::max_element(voxels.begin(), voxels.end());
      ch.volume_ml_mean = mean(ml);
      ch.volume_ml_median = median_of(ml);
      ch.volume_ml_min = *std::min_element(ml.begin(), ml.end());
      ch.volume_ml_max = *std::max_element(ml.begin(), ml.end());
      ch.mean_volume_fraction = mean(fractions);
    }
    ch.fraction_of_foreground = foreground_voxels ? static_cast<double>(ch.voxels) / foreground_voxels : 0.0;
    ch.fraction_of_voxels = all_voxels ? static_cast<double>(ch.voxels) / all_voxels : 0.0;
    ch.case_presence_fraction = num_cases > 0 ? ch.cases_present / num_cases : 0.0;
    ch.foreground_selection_probability = selection[c];
    if (ch.voxels > 0) {
      ch.pos_weight_unclipped = static_cast<double>(all_voxels - ch.voxels) / static_cast<double>(ch.voxels);
      ch.pos_weight = std::clamp(ch.pos_weight_unclipped, 1.0, options.max_pos_weight);
      ch.sampling_weight = 1.0 / selection[c];
      weight_sum += ch.sampling_weight;
      ++weighted;
    } else {
      ch.pos_weight_unclipped = ch.pos_weight = 1.0;
      ch.sampling_weight = 0.0;
    }
  }
  // Normalise sampling weights to mean 1 over the channels that occur.
  for (auto& ch : result.channels) {
    if (weighted && ch.sampling_weight > 0) ch.sampling_weight *= weighted / weight_sum;
  }
}

void compute_combinations_and_relations(AnalysisResult& result, const AnalyzeOptions& options) {
  const int num_channels = static_cast<int>(result.channel_names.size());
  std::map<CombinationKey, CombinationStatistics> merged;
  for (const auto& fp : result.cases) {
    for (const auto& [key, voxels] : fp.combinations.voxels) {
      if (is_background(key, num_channels)) {
        result.background_voxels += voxels;
        continue;
      }
      auto& stats = merged[key];
      stats.key = key;
      stats.voxels += voxels;
      stats.cases += 1;
    }
  }
  result.overlap_voxels.assign(num_channels, std::vector<std::int64_t>(num_channels, 0));
  for (auto& [key, stats] : merged) {
    stats.channels = channels_of(key, num_channels);
    stats.ignore = has_ignore_flag(key, num_channels);
    stats.rare = stats.voxels < options.min_combo_voxels || stats.cases < options.min_combo_cases;
    for (std::size_t i = 0; i < stats.channels.size(); ++i) {
      for (std::size_t j = 0; j < stats.channels.size(); ++j) {
        result.overlap_voxels[stats.channels[i]][stats.channels[j]] += stats.voxels;
      }
    }
    result.combinations.push_back(stats);
  }
  std::stable_sort(result.combinations.begin(), result.combinations.end(),
                   [](const auto& a, const auto& b) { return a.voxels > b.voxels; });
  result.cases_together.assign(num_channels, std::vector<std::int64_t>(num_channels, 0));
  for (const auto& fp : result.cases) {
    std::vector<int> present;
    for (int c = 0; c < num_channels; ++c) {
      if (fp.channel_voxels[c] > 0) present.push_back(c);
    }
    for (int a : present) {
      for (int b : present) ++result.cases_together[a][b];
    }
  }
  for (int a = 0; a < num_channels; ++a) {
    const std::int64_t a_voxels = result.overlap_voxels[a][a];
    if (a_voxels == 0) continue;
    for (int b = 0; b < num_channels; ++b) {
      const std::int64_t b_voxels = result.overlap_voxels[b][b];
      if (a == b || b_voxels == 0) continue;
      const std::int64_t overlap = result.overlap_voxels[a][b];
      ChannelRelation relation{a, b, ChannelRelation::Kind::partial, overlap, result.cases_together[a][b]};
      if (overlap == a_voxels && (a_voxels < b_voxels || a < b)) {
        relation.kind = ChannelRelation::Kind::inside;  // a ⊂ b (equal channels: listed once)
      } else if (overlap == a_voxels || overlap == b_voxels) {
        continue;  // the inside relation is listed from the other side
      } else if (overlap == 0) {
        if (a > b || relation.cases_together == 0) continue;  // symmetric; never together: nothing to say
        relation.kind = ChannelRelation::Kind::disjoint;
      } else {
        if (a > b) continue;
        relation.kind = ChannelRelation::Kind::partial;
      }
      result.relations.push_back(relation);
    }
  }
}

void recommend(AnalysisResult& result, const AnalyzeOptions& options) {
  const int num_channels = static_cast<int>(result.channel_names.size());
  std::int64_t overlapping_voxels = 0, observed = 0;
  for (const auto& combo : result.combinations) {
    if (combo.channels.empty()) continue;
    ++observed;
    if (combo.channels.size() > 1) overlapping_voxels += combo.voxels;
  }
  std::ostringstream reason;
  if (overlapping_voxels == 0) {
    result.recommended_encoding = "softmax";
    reason << "channels never overlap: one class per voxel (background + " << num_channels
           << " classes, CE + Dice, as nnU-Net's label training)";
  } else if (observed <= options.powerset_max_combinations && observed <= 4LL * num_channels) {
    result.recommended_encoding = "powerset";
    reason << "channels overlap in " << overlapping_voxels << " voxels, but only " << observed
           << " channel combinations occur (of 2^" << num_channels
           << " possible): one class per combination (CE over combinations + Dice on each channel's marginal)";
  } else {
    result.recommended_encoding = "sigmoid";
    reason << "channels overlap in " << overlapping_voxels << " voxels and " << observed
           << " combinations occur: one sigmoid output per channel (BCE + Dice)";
  }
  result.encoding_reason = reason.str();

  const auto folds = static_cast<std::int64_t>(options.num_folds);
  for (const auto& ch : result.channels) {
    if (ch.cases_present == 0) {
      result.warnings.push_back("channel \"" + ch.name +
                                "\" is empty in every case: it cannot be learned or validated; drop it or check the labels");
    } else if (ch.cases_present < folds && static_cast<std::int64_t>(result.cases.size()) >= folds) {
      result.warnings.push_back("channel \"" + ch.name + "\" is present in only " + std::to_string(ch.cases_present) +
                                (ch.cases_present == 1 ? " case" : " cases") + ", fewer than the " + std::to_string(folds) +
                                " folds: some validation folds cannot contain it");
    }
  }
  std::int64_t rare = 0;
  for (const auto& combo : result.combinations) rare += combo.rare ? 1 : 0;
  if (rare > 0) {
    result.warnings.push_back(std::to_string(rare) + " channel combinations are rare (< " +
                              std::to_string(options.min_combo_voxels) + " voxels or < " +
                              std::to_string(options.min_combo_cases) +
                              " cases): merge them into a neighbouring combination or ignore them under powerset "
                              "training (see labels.json \"combinations\")");
  }
}

std::vector<std::vector<int>> stratification_labels(const AnalysisResult& result) {
  const int num_channels = static_cast<int>(result.channel_names.size());
  // Label ids: channels 0..C-1, then rare combinations C, C+1, ...
  std::map<CombinationKey, int> rare_ids;
  for (const auto& combo : result.combinations) {
    if (combo.rare && combo.channels.size() > 0) rare_ids.emplace(combo.key, num_channels + static_cast<int>(rare_ids.size()));
  }
  std::vector<std::vector<int>> labels(result.cases.size());
  for (std::size_t i = 0; i < result.cases.size(); ++i) {
    const auto& fp = result.cases[i];
    for (int c = 0; c < num_channels; ++c) {
      if (fp.channel_voxels[c] > 0) labels[i].push_back(c);
    }
    for (const auto& [key, voxels] : fp.combinations.voxels) {
      auto found = rare_ids.find(key);
      if (found != rare_ids.end()) labels[i].push_back(found->second);
    }
  }
  return labels;
}

void make_splits(AnalysisResult& result, const AnalyzeOptions& options, const fs::path& splits_path) {
  std::vector<std::string> ids;
  for (const auto& fp : result.cases) ids.push_back(fp.case_id);
  const std::set<std::string> known(ids.begin(), ids.end());
  if (options.write_files && fs::exists(splits_path) && !options.overwrite_splits) {
    result.folds = folds_from_json(read_json_file(splits_path), splits_path.string());
    result.split_method = "existing";
    for (const auto& fold : result.folds) {
      for (const auto& id : fold.val) {
        if (!known.count(id)) {
          throw Error("the existing splits_final.json names case \"" + id + "\", which the dataset does not have",
                      "delete it or pass --overwrite-splits to make new folds", {splits_path.string(), id, ""});
        }
      }
    }
  } else if (ids.size() < 2) {
    result.warnings.push_back("only one case: no cross-validation folds (train with -f all)");
    return;
  } else {
    const int folds = std::min<int>(options.num_folds, static_cast<int>(ids.size()));
    if (folds < options.num_folds) {
      result.warnings.push_back("only " + std::to_string(ids.size()) + " cases: " + std::to_string(folds) +
                                " folds instead of " + std::to_string(options.num_folds));
    }
    if (options.splits == SplitMethod::random) {
      result.folds = random_kfold(ids, folds, options.split_seed);
      result.split_method = "random";
    } else {
      result.folds = stratified_folds(ids, stratification_labels(result), folds, options.split_seed);
      result.split_method = "stratified";
    }
  }
  // Coverage: validation cases per channel per fold.
  std::map<std::string, const CaseFingerprint*> by_id;
  for (const auto& fp : result.cases) by_id[fp.case_id] = &fp;
  const int num_channels = static_cast<int>(result.channel_names.size());
  result.fold_coverage.assign(num_channels, std::vector<std::int64_t>(result.folds.size(), 0));
  for (std::size_t f = 0; f < result.folds.size(); ++f) {
    for (const auto& id : result.folds[f].val) {
      const auto* fp = by_id.at(id);
      for (int c = 0; c < num_channels; ++c) result.fold_coverage[c][f] += fp->channel_voxels[c] > 0 ? 1 : 0;
    }
  }
  for (int c = 0; c < num_channels; ++c) {
    if (result.channels[c].cases_present == 0) continue;
    for (std::size_t f = 0; f < result.folds.size(); ++f) {
      if (result.fold_coverage[c][f] == 0) {
        result.warnings.push_back("FOLD " + std::to_string(f) + " HAS NO VALIDATION CASE WITH \"" + result.channel_names[c] +
                                  "\" (present in " + std::to_string(result.channels[c].cases_present) +
                                  " cases): its validation Dice for this channel is undefined");
      }
    }
  }
}

}  // namespace

AnalysisResult analyze_dataset(const fs::path& dataset_dir, const AnalyzeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Dataset dataset = load_dataset(dataset_dir);
  if (!dataset.layout_problems.empty()) {
    const auto& problem = dataset.layout_problems.front();
    throw Error("the dataset has " + std::to_string(dataset.layout_problems.size()) +
                    " layout problems, the first: " + problem.message,
                "run `mlseg verify " + dataset_dir.string() + "` and fix what it reports",
                {problem.file.string(), problem.case_id, ""});
  }
  std::vector<const CaseFiles*> labelled;
  for (const auto& files : dataset.training) {
    if (files.has_label) labelled.push_back(&files);
  }
  if (labelled.empty()) {
    throw Error("the dataset has no labelled training cases", "put labelled cases in imagesTr/ and labelsTr/",
                {dataset_dir.string(), "", ""});
  }
  AnalysisResult result;
  result.dataset_name = dataset.name;
  result.label_format = to_string(dataset.labels.format);
  result.region_based = dataset.labels.is_region_based();
  result.image_channels = dataset.image_channel_names;
  for (const auto& channel : dataset.labels.channels) result.channel_names.push_back(channel.name);

  const std::int64_t samples_per_case = options.foreground_samples / static_cast<std::int64_t>(labelled.size());
  std::vector<CaseWork> work(labelled.size());
  ProgressOptions progress_options;
  progress_options.enabled = options.show_progress;
  Progress progress("analyze", static_cast<std::int64_t>(labelled.size()), "cases", progress_options);
  parallel_for(labelled.size(), options.threads, [&](std::size_t i) {
    try {
      analyse_case(dataset, *labelled[i], i, samples_per_case, options.seed, work[i]);
    } catch (const Error& error) {
      work[i].error = error.located({"", labelled[i]->case_id, ""}).what();
    } catch (const std::exception& error) {
      work[i].error = labelled[i]->case_id + ": " + error.what();
    }
    progress.advance();
  });
  progress.finish();
  std::size_t failures = 0;
  std::string first_failure;
  for (const auto& w : work) {
    if (!w.error.empty() && failures++ == 0) first_failure = w.error;
  }
  if (failures) {
    throw Error(std::to_string(failures) + " case(s) could not be read; the first:\n  " + first_failure,
                "run `mlseg verify " + dataset_dir.string() + "` and fix what it reports", {});
  }

  const std::size_t image_channels = work.front().samples.size();
  result.intensity.resize(image_channels);
  for (std::size_t m = 0; m < image_channels; ++m) {
    std::vector<WeightedSample> all;
    std::size_t total = 0;
    for (const auto& w : work) total += w.samples.size() > m ? w.samples[m].size() : 0;
    all.reserve(total);
    for (auto& w : work) {
      if (w.samples.size() <= m) continue;
      all.insert(all.end(), w.samples[m].begin(), w.samples[m].end());
      std::vector<WeightedSample>().swap(w.samples[m]);
    }
    result.intensity[m] = intensity_statistics(std::move(all));
  }
  for (auto& w : work) result.cases.push_back(std::move(w.fingerprint));
  std::vector<double> relative_sizes;
  for (const auto& fp : result.cases) {
    const double before = static_cast<double>(fp.shape_zyx[0] * fp.shape_zyx[1] * fp.shape_zyx[2]);
    const double after = static_cast<double>(fp.shape_after_crop_zyx[0] * fp.shape_after_crop_zyx[1] *
                                             fp.shape_after_crop_zyx[2]);
    relative_sizes.push_back(before > 0 ? after / before : 0.0);
  }
  result.median_relative_size_after_cropping = median_of(relative_sizes);

  compute_channel_statistics(result, options);
  compute_combinations_and_relations(result, options);
  recommend(result, options);
  const fs::path work_dir = dataset_work_dir(resolve_work_dir(options.work_dir), dataset.name);
  make_splits(result, options, work_dir / "splits_final.json");
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.write_files) {
    result.output_dir = work_dir;
    write_json_file(work_dir / "analysis" / "fingerprint.json", fingerprint_to_json(result));
    write_json_file(work_dir / "analysis" / "labels.json", labels_to_json(result, options));
    if (!result.folds.empty() && result.split_method != "existing") {
      write_json_file(work_dir / "splits_final.json", folds_to_json(result.folds));
    }
  }
  return result;
}

}  // namespace mlseg
