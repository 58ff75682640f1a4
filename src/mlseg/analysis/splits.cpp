#include "mlseg/analysis/splits.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "mlseg/core/error.h"
#include "mlseg/core/random.h"

namespace mlseg {

namespace {

void validate(std::size_t num_cases, int num_folds) {
  if (num_folds < 2 || static_cast<std::size_t>(num_folds) > num_cases) {
    throw Error("cannot make " + std::to_string(num_folds) + " folds from " + std::to_string(num_cases) + " cases",
                "use between 2 and " + std::to_string(num_cases) + " folds (or train on all cases with -f all)", {});
  }
}

}  // namespace

std::vector<Fold> stratified_folds(const std::vector<std::string>& case_ids,
                                   const std::vector<std::vector<int>>& case_labels, int num_folds,
                                   std::uint64_t seed) {
  validate(case_ids.size(), num_folds);
  const std::size_t num_cases = case_ids.size();
  SplitMix64 random(seed);  // seeded tie-breaking, identical on every platform
  // Desired number of cases per fold, and per label per fold.
  std::vector<double> fold_need(num_folds, static_cast<double>(num_cases) / num_folds);
  std::map<int, std::vector<double>> label_need;
  std::map<int, std::set<std::size_t>> remaining_with_label;
  for (std::size_t i = 0; i < num_cases; ++i) {
    for (int label : case_labels[i]) remaining_with_label[label].insert(i);
  }
  for (const auto& [label, cases] : remaining_with_label) {
    label_need[label].assign(num_folds, static_cast<double>(cases.size()) / num_folds);
  }
  std::vector<int> assignment(num_cases, -1);
  std::size_t unassigned = num_cases;

  auto place = [&](std::size_t i, int fold) {
    assignment[i] = fold;
    --unassigned;
    fold_need[fold] -= 1;
    for (int label : case_labels[i]) {
      label_need[label][fold] -= 1;
      remaining_with_label[label].erase(i);
    }
  };
  // Best fold for a case: most need for `label`, then most need overall, then seeded tie-break.
  auto best_fold = [&](const std::vector<double>* need_for_label) {
    std::vector<int> candidates;
    double best_label = -1e300, best_total = -1e300;
    for (int f = 0; f < num_folds; ++f) {
      const double by_label = need_for_label ? (*need_for_label)[f] : 0.0;
      const double total = fold_need[f];
      if (by_label > best_label + 1e-9 || (std::abs(by_label - best_label) <= 1e-9 && total > best_total + 1e-9)) {
        best_label = by_label;
        best_total = total;
        candidates = {f};
      } else if (std::abs(by_label - best_label) <= 1e-9 && std::abs(total - best_total) <= 1e-9) {
        candidates.push_back(f);
      }
    }
    return candidates[random.below(candidates.size())];
  };

  while (unassigned > 0) {
    // The label with the fewest remaining cases (ties: lowest label id).
    int rarest = 0;
    std::size_t fewest = 0;
    for (const auto& [label, cases] : remaining_with_label) {
      if (!cases.empty() && (fewest == 0 || cases.size() < fewest)) {
        fewest = cases.size();
        rarest = label;
      }
    }
    if (fewest == 0) {
      // Cases without any label: fill the folds that still need cases.
      std::vector<std::size_t> rest;
      for (std::size_t i = 0; i < num_cases; ++i) {
        if (assignment[i] < 0) rest.push_back(i);
      }
      for (std::size_t k = rest.size(); k > 1; --k) std::swap(rest[k - 1], rest[random.below(k)]);
      for (std::size_t i : rest) place(i, best_fold(nullptr));
      break;
    }
    std::vector<std::size_t> cases(remaining_with_label[rarest].begin(), remaining_with_label[rarest].end());
    for (std::size_t k = cases.size(); k > 1; --k) std::swap(cases[k - 1], cases[random.below(k)]);
    for (std::size_t i : cases) place(i, best_fold(&label_need[rarest]));
  }

  std::vector<Fold> folds(num_folds);
  for (int f = 0; f < num_folds; ++f) {
    for (std::size_t i = 0; i < num_cases; ++i) {
      (assignment[i] == f ? folds[f].val : folds[f].train).push_back(case_ids[i]);
    }
    std::sort(folds[f].val.begin(), folds[f].val.end());
    std::sort(folds[f].train.begin(), folds[f].train.end());
  }
  return folds;
}

std::vector<Fold> random_kfold(std::vector<std::string> case_ids, int num_folds, std::uint64_t seed) {
  validate(case_ids.size(), num_folds);
  std::sort(case_ids.begin(), case_ids.end());
  const std::size_t n = case_ids.size();
  // numpy RandomState(seed).shuffle: MT19937 seeded with init_genrand, legacy Fisher-Yates with
  // masked rejection sampling (numpy/random/_common random_interval).
  std::mt19937 generator(static_cast<std::uint32_t>(seed & 0xffffffffu));
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  for (std::size_t i = n - 1; i >= 1; --i) {
    std::uint64_t mask = i;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    std::uint64_t value;
    do {
      value = generator() & mask;
    } while (value > i);
    std::swap(order[i], order[value]);
  }
  // sklearn KFold: the first n % k folds get one extra case; val = consecutive chunks.
  std::vector<Fold> folds(num_folds);
  std::size_t start = 0;
  for (int f = 0; f < num_folds; ++f) {
    const std::size_t size = n / num_folds + (static_cast<std::size_t>(f) < n % num_folds ? 1 : 0);
    std::vector<bool> in_val(n, false);
    for (std::size_t k = start; k < start + size; ++k) {
      folds[f].val.push_back(case_ids[order[k]]);
      in_val[order[k]] = true;
    }
    folds[f].val.clear();  // sklearn returns indices through a boolean mask: ascending
    for (std::size_t i = 0; i < n; ++i) (in_val[i] ? folds[f].val : folds[f].train).push_back(case_ids[i]);
    start += size;
  }
  return folds;
}

nlohmann::ordered_json folds_to_json(const std::vector<Fold>& folds) {
  nlohmann::ordered_json json = nlohmann::ordered_json::array();
  for (const auto& fold : folds) json.push_back({{"train", fold.train}, {"val", fold.val}});
  return json;
}

std::vector<Fold> folds_from_json(const nlohmann::ordered_json& json, const std::string& source) {
  const Error malformed("splits_final.json must be a list of {\"train\": [...], \"val\": [...]}",
                        "delete the file to have it recreated, or fix it", {source, "", ""});
  if (!json.is_array() || json.empty()) throw malformed;
  std::vector<Fold> folds;
  for (const auto& entry : json) {
    if (!entry.is_object() || !entry.contains("train") || !entry.contains("val")) throw malformed;
    try {
      folds.push_back({entry["train"].get<std::vector<std::string>>(), entry["val"].get<std::vector<std::string>>()});
    } catch (const nlohmann::json::exception&) {
      throw malformed;
    }
  }
  return folds;
}

}  // namespace mlseg
