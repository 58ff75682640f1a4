// Properties of stratified_folds that must hold for every input, not only for handpicked ones:
// on the label sets `mlseg analyze` builds for synthetic datasets, and on random label sets.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "mlseg/analysis/analyze.h"
#include "mlseg/analysis/combination_histogram.h"
#include "mlseg/analysis/splits.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/random.h"
#include "mlseg/synth/phantom.h"

namespace mlseg {
namespace {

struct FoldProperties {
  std::vector<std::string> uncovered;  ///< "label L (N cases) missing from fold F"
  std::size_t smallest_fold = 0, largest_fold = 0;
  std::vector<std::string> not_once;  ///< cases in no validation fold or in several
};

FoldProperties fold_properties(const std::vector<std::string>& ids, const std::vector<std::vector<int>>& labels,
                               const std::vector<Fold>& folds) {
  FoldProperties properties;
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < ids.size(); ++i) index[ids[i]] = i;
  std::map<int, std::size_t> cases_with;
  for (const auto& case_labels : labels) {
    for (int label : std::set<int>(case_labels.begin(), case_labels.end())) ++cases_with[label];
  }
  std::map<std::string, int> times_in_val;
  properties.smallest_fold = ids.size();
  for (std::size_t f = 0; f < folds.size(); ++f) {
    properties.smallest_fold = std::min(properties.smallest_fold, folds[f].val.size());
    properties.largest_fold = std::max(properties.largest_fold, folds[f].val.size());
    std::set<int> present;
    for (const auto& id : folds[f].val) {
      ++times_in_val[id];
      for (int label : labels[index.at(id)]) present.insert(label);
    }
    for (const auto& [label, cases] : cases_with) {
      if (cases >= folds.size() && !present.count(label)) {
        properties.uncovered.push_back("label " + std::to_string(label) + " (" + std::to_string(cases) +
                                       " cases) missing from fold " + std::to_string(f));
      }
    }
  }
  for (const auto& id : ids) {
    if (times_in_val[id] != 1) properties.not_once.push_back(id);
  }
  return properties;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : "; ") + item;
  return text;
}

// The label sets `mlseg analyze` gives stratified_folds (stratification_labels in analyze.cpp):
// channel c present -> label c; a rare non-background combination -> label C + k, numbered in
// the order of the combination table (most voxels first). Rare: fewer voxels or cases than the
// AnalyzeOptions thresholds.
std::vector<std::vector<int>> analyze_labels(const std::vector<CombinationHistogram>& cases, int num_channels,
                                             const AnalyzeOptions& options) {
  std::map<CombinationKey, std::pair<std::int64_t, std::int64_t>> merged;  // key -> (voxels, cases)
  for (const auto& histogram : cases) {
    for (const auto& [key, voxels] : histogram.voxels) {
      if (is_background(key, num_channels)) continue;
      merged[key].first += voxels;
      merged[key].second += 1;
    }
  }
  std::vector<std::pair<CombinationKey, std::pair<std::int64_t, std::int64_t>>> table(merged.begin(), merged.end());
  std::stable_sort(table.begin(), table.end(),
                   [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::map<CombinationKey, int> rare_ids;
  for (const auto& [key, totals] : table) {
    const bool rare = totals.first < options.min_combo_voxels || totals.second < options.min_combo_cases;
    if (rare && !channels_of(key, num_channels).empty()) {
      rare_ids.emplace(key, num_channels + static_cast<int>(rare_ids.size()));
    }
  }
  std::vector<std::vector<int>> labels(cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::vector<std::int64_t> channel_voxels(num_channels, 0);
    for (const auto& [key, voxels] : cases[i].voxels) {
      for (int c : channels_of(key, num_channels)) channel_voxels[c] += voxels;
    }
    for (int c = 0; c < num_channels; ++c) {
      if (channel_voxels[c] > 0) labels[i].push_back(c);
    }
    for (const auto& [key, voxels] : cases[i].voxels) {
      const auto found = rare_ids.find(key);
      if (found != rare_ids.end()) labels[i].push_back(found->second);
    }
  }
  return labels;
}

TEST(StratifiedFoldsProperty, SynthDatasetsSplitAsAnalyzeSplitsThem) {
  // mlseg synth DIR --cases 40 --channels 10 --rare-every 8 --format bitmask --seed S, then
  // mlseg analyze DIR: the "rare" channel is in exactly 5 cases, for 5 folds.
  const AnalyzeOptions analyze;
  std::mutex mutex;
  std::vector<std::string> failures;
  parallel_for(50, 0, [&](std::size_t k) {
    PhantomOptions phantom;
    phantom.num_cases = 40;
    phantom.num_channels = 10;
    phantom.rare_every = 8;
    phantom.label_format = PhantomLabelFormat::bitmask;
    phantom.seed = k + 1;
    phantom.show_progress = false;
    std::vector<std::string> ids;
    std::vector<CombinationHistogram> histograms;
    for (int i = 0; i < phantom.num_cases; ++i) {
      const PhantomCase phantom_case = make_phantom_case(i, phantom);
      ids.push_back(phantom_case.case_id);
      histograms.push_back(count_combinations(phantom_case.code));
    }
    const auto labels = analyze_labels(histograms, phantom.num_channels, analyze);
    const auto folds = stratified_folds(ids, labels, analyze.num_folds, analyze.split_seed);
    const FoldProperties properties = fold_properties(ids, labels, folds);
    std::string problem;
    if (!properties.uncovered.empty()) problem += " uncovered: " + joined(properties.uncovered) + ".";
    if (properties.largest_fold - properties.smallest_fold > 1) {
      problem += " fold sizes " + std::to_string(properties.smallest_fold) + ".." +
                 std::to_string(properties.largest_fold) + ".";
    }
    if (!properties.not_once.empty()) problem += " not in exactly one validation fold: " + joined(properties.not_once);
    if (folds.size() != static_cast<std::size_t>(analyze.num_folds)) problem += " wrong number of folds.";
    if (!problem.empty()) {
      std::lock_guard<std::mutex> lock(mutex);
      failures.push_back("synth seed " + std::to_string(phantom.seed) + ":" + problem);
    }
  });
  EXPECT_TRUE(failures.empty()) << joined(failures);
}

// Is there an assignment with fold sizes within one that puts every label of >= num_folds cases
// into every fold? Exhaustive; for a handful of cases only.
bool coverage_is_possible(const std::vector<std::vector<int>>& labels, int num_folds) {
  const int num_cases = static_cast<int>(labels.size());
  std::map<int, int> cases_with;
  for (const auto& case_labels : labels) {
    for (int label : case_labels) ++cases_with[label];
  }
  std::vector<int> fold_of(num_cases), fold_size(num_folds, 0);
  const int largest = (num_cases + num_folds - 1) / num_folds;
  std::function<bool(int)> assign = [&](int i) {
    if (i == num_cases) {
      for (const auto& [label, cases] : cases_with) {
        if (cases < num_folds) continue;
        std::vector<bool> present(num_folds, false);
        for (int j = 0; j < num_cases; ++j) {
          for (int l : labels[j]) present[fold_of[j]] = present[fold_of[j]] || l == label;
        }
        if (std::count(present.begin(), present.end(), false) > 0) return false;
      }
      return *std::min_element(fold_size.begin(), fold_size.end()) >= num_cases / num_folds;
    }
    for (int f = 0; f < num_folds; ++f) {
      if (fold_size[f] == largest) continue;
      fold_of[i] = f;
      ++fold_size[f];
      if (assign(i + 1)) return true;
      --fold_size[f];
      if (fold_size[f] == 0) break;  // folds are interchangeable: try one empty fold only
    }
    return false;
  };
  return assign(0);
}

TEST(StratifiedFoldsProperty, RandomLabelSets) {
  // Sizes and partition hold for every input. Coverage can be impossible (two-case folds cannot
  // hold three one-label cases' labels), so it is checked against exhaustive search on small
  // inputs: whenever some balanced assignment covers every coverable label, the folds must too.
  int small_and_coverable = 0;
  for (std::uint64_t trial = 1; trial <= 3000; ++trial) {
    SplitMix64 random(trial * 7919);
    const bool small = trial % 2 == 0;
    const int num_folds = small ? 2 + static_cast<int>(random.below(2)) : 2 + static_cast<int>(random.below(9));
    const int num_cases = num_folds + static_cast<int>(random.below(small ? 9 - num_folds : 80));
    const int num_labels = 1 + static_cast<int>(random.below(small ? 5 : 25));
    std::vector<double> prevalence(num_labels);
    for (auto& p : prevalence) p = random.uniform() * random.uniform();  // many rare labels
    std::vector<std::vector<int>> labels(num_cases);
    std::vector<std::string> ids;
    for (int i = 0; i < num_cases; ++i) {
      ids.push_back("case_" + std::to_string(1000 + i));
      for (int l = 0; l < num_labels; ++l) {
        if (random.uniform() < prevalence[l]) labels[i].push_back(l);
      }
    }
    const auto folds = stratified_folds(ids, labels, num_folds, trial);
    ASSERT_EQ(folds.size(), static_cast<std::size_t>(num_folds)) << "trial " << trial;
    const FoldProperties properties = fold_properties(ids, labels, folds);
    EXPECT_LE(properties.largest_fold - properties.smallest_fold, 1u) << "trial " << trial;
    EXPECT_TRUE(properties.not_once.empty()) << "trial " << trial << ": " << joined(properties.not_once);
    for (const auto& fold : folds) EXPECT_EQ(fold.train.size() + fold.val.size(), ids.size()) << "trial " << trial;
    if (small && coverage_is_possible(labels, num_folds)) {
      ++small_and_coverable;
      EXPECT_TRUE(properties.uncovered.empty()) << "trial " << trial << ": " << joined(properties.uncovered);
    }
    EXPECT_EQ(folds_to_json(folds), folds_to_json(stratified_folds(ids, labels, num_folds, trial)))
        << "trial " << trial << ": same seed, same folds";
  }
  EXPECT_GT(small_and_coverable, 1000) << "the exhaustive comparison must see many inputs";
}

}  // namespace
}  // namespace mlseg
