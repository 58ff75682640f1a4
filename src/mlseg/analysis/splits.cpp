#include "mlseg/analysis/splits.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <utility>

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


// Fold membership and validation cases per label per fold, for the repair passes after the
// iterative pass. A label is "coverable" when at least `num_folds` cases carry it.
class FoldPlacement {
 public:
  FoldPlacement(const std::vector<std::vector<int>>& case_labels, std::vector<int> fold_of, int num_folds)
      : labels_(case_labels), fold_of_(std::move(fold_of)), fold_size_(num_folds, 0) {
    for (std::size_t i = 0; i < labels_.size(); ++i) {
      ++fold_size_[fold_of_[i]];
      for (int label : labels_[i]) {
        auto& per_fold = count_[label];
        if (per_fold.empty()) per_fold.assign(num_folds, 0);
        ++per_fold[fold_of_[i]];
      }
    }
    for (const auto& [label, per_fold] : count_) {
      std::int64_t total = 0;
      for (std::int64_t n : per_fold) total += n;
      if (total >= num_folds) coverable_.emplace_back(total, label);
    }
    std::sort(coverable_.begin(), coverable_.end());  // rarest first, ties by label id
  }

  int num_folds() const { return static_cast<int>(fold_size_.size()); }
  std::size_t num_cases() const { return labels_.size(); }
  int fold_of(std::size_t i) const { return fold_of_[i]; }
  const std::vector<int>& fold_of() const { return fold_of_; }
  std::int64_t fold_size(int fold) const { return fold_size_[fold]; }
  const std::vector<int>& labels(std::size_t i) const { return labels_[i]; }
  std::int64_t count(int label, int fold) const { return count_.at(label)[fold]; }
  bool is_coverable(int label) const {
    const auto& per_fold = count_.at(label);
    std::int64_t total = 0;
    for (std::int64_t n : per_fold) total += n;
    return total >= num_folds();
  }
  /// Coverable labels as (cases, label), rarest first.
  const std::vector<std::pair<std::int64_t, int>>& coverable() const { return coverable_; }

  /// Coverable labels that case i is the last carrier of in its fold, unless `incoming` (a case
  /// entering that fold in exchange, or none) carries them too.
  int labels_uncovered_by_leaving(std::size_t i, const std::vector<int>* incoming) const {
    int uncovered = 0;
    for (int label : labels_[i]) {
      if (count(label, fold_of_[i]) != 1 || !is_coverable(label)) continue;
      if (incoming && std::binary_search(incoming->begin(), incoming->end(), label)) continue;
      ++uncovered;
    }
    return uncovered;
  }
  /// Coverable labels of case i that fold `to` lacks.
  int labels_covered_by_entering(std::size_t i, int to) const {
    int covered = 0;
    for (int label : labels_[i]) covered += count(label, to) == 0 && is_coverable(label) ? 1 : 0;
    return covered;
  }

  void move(std::size_t i, int to) {
    const int from = fold_of_[i];
    --fold_size_[from];
    ++fold_size_[to];
    for (int label : labels_[i]) {
      --count_[label][from];
      ++count_[label][to];
    }
    fold_of_[i] = to;
  }

 private:
  const std::vector<std::vector<int>>& labels_;  // per case: sorted, without duplicates
  std::vector<int> fold_of_;
  std::vector<std::int64_t> fold_size_;
  std::map<int, std::vector<std::int64_t>> count_;
  std::vector<std::pair<std::int64_t, int>> coverable_;
};

// How many labels are in exactly one of the sorted sets `a` and `b`, not counting `ignored`.
std::size_t symmetric_difference(const std::vector<int>& a, const std::vector<int>& b, int ignored) {
  std::size_t differ = 0;
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end() || j != b.end()) {
    if (j == b.end() || (i != a.end() && *i < *j)) {
      differ += *i++ != ignored;
    } else if (i == a.end() || *j < *i) {
      differ += *j++ != ignored;
    } else {
      ++i;
      ++j;
    }
  }
  return differ;
}

// Moves cases from the largest fold to the smallest until sizes differ by at most one. Each move
// lowers the sum of squared fold sizes, so this ends. The case moved is the one that covers most
// and uncovers fewest coverable labels, then the one with fewest labels, then the lowest index.
void balance_fold_sizes(FoldPlacement& placement) {
  const int num_folds = placement.num_folds();
  while (true) {
    int largest = 0, smallest = 0;
    for (int f = 1; f < num_folds; ++f) {
      if (placement.fold_size(f) > placement.fold_size(largest)) largest = f;
      if (placement.fold_size(f) < placement.fold_size(smallest)) smallest = f;
    }
    if (placement.fold_size(largest) - placement.fold_size(smallest) <= 1) return;
    std::size_t best = 0;
    std::tuple<int, std::size_t> best_key{0, 0};
    bool found = false;
    for (std::size_t i = 0; i < placement.num_cases(); ++i) {
      if (placement.fold_of(i) != largest) continue;
      const int net_loss =
          placement.labels_uncovered_by_leaving(i, nullptr) - placement.labels_covered_by_entering(i, smallest);
      const std::tuple<int, std::size_t> key{net_loss, placement.labels(i).size()};
      if (!found || key < best_key) {
        best = i;
        best_key = key;
        found = true;
      }
    }
    placement.move(best, smallest);
  }
}

// Case i carries `label` and sits in a fold other than `fold` that holds two or more such cases.
bool is_surplus_carrier(const FoldPlacement& placement, std::size_t i, int label, int fold) {
  const int from = placement.fold_of(i);
  const auto& labels = placement.labels(i);
  return from != fold && placement.count(label, from) >= 2 && std::binary_search(labels.begin(), labels.end(), label);
}

// Puts a case carrying `label` into `fold`, which lacks it, from a fold holding two or more: by
// exchanging it with a case of `fold`, by moving it alone when its fold is the larger one (fold
// sizes stay within one), or, failing both, by a three-fold cycle. Only changes that uncover no coverable label qualify; among them the one
// whose two cases differ least in their other labels, so the other labels' spread barely changes.
// Returns false when no change qualifies.
bool cover_directly(FoldPlacement& placement, int label, int fold, bool allow_cycle) {
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t best_in = kNone, best_out = kNone, best_difference = 0;
  for (std::size_t in = 0; in < placement.num_cases(); ++in) {
    if (!is_surplus_carrier(placement, in, label, fold)) continue;
    const int donor = placement.fold_of(in);
    const auto& in_labels = placement.labels(in);
    auto consider = [&](std::size_t out) {
      const std::vector<int> nothing;
      const auto& out_labels = out == kNone ? nothing : placement.labels(out);
      const std::size_t difference = symmetric_difference(in_labels, out_labels, label);
      if (best_in != kNone && difference >= best_difference) return;
      if (placement.labels_uncovered_by_leaving(in, out == kNone ? nullptr : &out_labels) > 0) return;
      if (out != kNone && placement.labels_uncovered_by_leaving(out, &in_labels) > 0) return;
      best_in = in;
      best_out = out;
      best_difference = difference;
    };
    if (placement.fold_size(donor) > placement.fold_size(fold)) consider(kNone);
    for (std::size_t out = 0; out < placement.num_cases(); ++out) {
      if (placement.fold_of(out) == fold) consider(out);
    }
  }
  if (best_in != kNone) {
    const int donor = placement.fold_of(best_in);
    placement.move(best_in, fold);
    if (best_out != kNone) placement.move(best_out, donor);
    return true;
  }
  if (!allow_cycle) return false;
  // No exchange qualifies: try a cycle through a third fold. `in` goes to `fold`, `out` from
  // `fold` to a third fold, and a case of that fold back to `in`'s fold; the first that uncovers
  // nothing, in case order.
  for (std::size_t in = 0; in < placement.num_cases(); ++in) {
    if (!is_surplus_carrier(placement, in, label, fold)) continue;
    const int donor = placement.fold_of(in);
    const auto& in_labels = placement.labels(in);
    for (std::size_t out = 0; out < placement.num_cases(); ++out) {
      if (placement.fold_of(out) != fold || placement.labels_uncovered_by_leaving(out, &in_labels) > 0) continue;
      for (std::size_t back = 0; back < placement.num_cases(); ++back) {
        const int third = placement.fold_of(back);
        if (third == fold || third == donor) continue;
        if (placement.labels_uncovered_by_leaving(in, &placement.labels(back)) > 0 ||
            placement.labels_uncovered_by_leaving(back, &placement.labels(out)) > 0) {
          continue;
        }
        placement.move(in, fold);
        placement.move(out, third);
        placement.move(back, donor);
        return true;
      }
    }
  }
  return false;
}

// cover_directly, or else first an exchange that uncovers nothing and takes a case carrying
// `label` from a fold holding two or more into a third fold, where its other labels may be less
// scarce, then an exchange or move from there. Tries at most kMaxDetours detours, so large datasets
// with label sets that cannot be covered stay fast.
bool cover(FoldPlacement& placement, int label, int fold) {
  if (cover_directly(placement, label, fold, true)) return true;
  constexpr int kMaxDetours = 2000;
  int detours = 0;
  for (std::size_t in = 0; in < placement.num_cases(); ++in) {
    if (!is_surplus_carrier(placement, in, label, fold)) continue;
    const int donor = placement.fold_of(in);
    const auto& in_labels = placement.labels(in);
    for (std::size_t out = 0; out < placement.num_cases(); ++out) {
      const int third = placement.fold_of(out);
      if (third == fold || third == donor) continue;
      if (placement.labels_uncovered_by_leaving(in, &placement.labels(out)) > 0 ||
          placement.labels_uncovered_by_leaving(out, &in_labels) > 0) {
        continue;
      }
      if (++detours > kMaxDetours) return false;
      placement.move(in, third);
      placement.move(out, donor);
      if (cover_directly(placement, label, fold, false)) return true;
      placement.move(out, third);  // undo
      placement.move(in, donor);
    }
  }
  return false;
}

// Covers every coverable label in every fold where single changes can, rarest label first. Each
// change covers one (label, fold) pair and uncovers none, so there are at most labels x folds of
// them, and a sweep without a change ends the loop.
void cover_coverable_labels(FoldPlacement& placement) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (const auto& [cases, label] : placement.coverable()) {
      for (int f = 0; f < placement.num_folds(); ++f) {
        if (placement.count(label, f) == 0 && cover(placement, label, f)) changed = true;
      }
    }
  }
}

}  // namespace

std::vector<Fold> stratified_folds(const std::vector<std::string>& case_ids,
                                   const std::vector<std::vector<int>>& case_labels, int num_folds,
                                   std::uint64_t seed) {
  validate(case_ids.size(), num_folds);
  if (case_labels.size() != case_ids.size()) {
    throw Error("stratification got label sets for " + std::to_string(case_labels.size()) + " cases but " +
                    std::to_string(case_ids.size()) + " case ids",
                "pass one label set per case, in the order of the case ids", {});
  }
  const std::size_t num_cases = case_ids.size();
  std::vector<std::vector<int>> labels_of(case_labels);  // sorted, a label once per case
  for (auto& labels : labels_of) {
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  }
  SplitMix64 random(seed);  // seeded tie-breaking, identical on every platform
  // Desired number of cases per fold, and per label per fold.
  std::vector<double> fold_need(num_folds, static_cast<double>(num_cases) / num_folds);
  std::map<int, std::vector<double>> label_need;
  std::map<int, std::set<std::size_t>> remaining_with_label;
  for (std::size_t i = 0; i < num_cases; ++i) {
    for (int label : labels_of[i]) remaining_with_label[label].insert(i);
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
    for (int label : labels_of[i]) {
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

  // The iterative pass balances label proportions but promises neither fold sizes nor coverage
  // (a rare combination placed first can put two cases of a channel into one fold): repair both.
  FoldPlacement placement(labels_of, std::move(assignment), num_folds);
  balance_fold_sizes(placement);
  cover_coverable_labels(placement);
  const std::vector<int>& fold_of = placement.fold_of();

  std::vector<Fold> folds(num_folds);
  for (int f = 0; f < num_folds; ++f) {
    for (std::size_t i = 0; i < num_cases; ++i) {
      (fold_of[i] == f ? folds[f].val : folds[f].train).push_back(case_ids[i]);
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
