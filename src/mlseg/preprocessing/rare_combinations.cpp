#include "mlseg/preprocessing/rare_combinations.h"

#include "mlseg/core/error.h"
#include "mlseg/preprocessing/code_words64.h"

namespace mlseg {

RareCombinationPolicy parse_rare_policy(const std::string& name) {
  if (name == "keep") return RareCombinationPolicy::keep;
  if (name == "ignore") return RareCombinationPolicy::ignore;
  if (name == "merge") return RareCombinationPolicy::merge;
  throw Error("unknown rare-combination policy \"" + name + "\"", "use --rare-combos keep, ignore or merge");
}

std::string to_string(RareCombinationPolicy policy) {
  switch (policy) {
    case RareCombinationPolicy::keep: return "keep";
    case RareCombinationPolicy::ignore: return "ignore";
    case RareCombinationPolicy::merge: return "merge";
  }
  return "keep";
}

std::vector<ObservedCombination> observed_combinations_from_labels_json(const nlohmann::ordered_json& labels,
                                                                        const std::string& source) {
  std::vector<ObservedCombination> result;
  if (!labels.contains("combinations") || !labels["combinations"].is_array()) {
    throw Error("labels.json has no \"combinations\" list", "re-run `mlseg analyze` for this dataset").located({source, "", ""});
  }
  for (const auto& entry : labels["combinations"]) {
    ObservedCombination combination;
    try {
      combination.code_words = entry.at("code_words").get<std::vector<std::uint64_t>>();
      combination.voxels = entry.at("voxels").get<std::int64_t>();
      combination.rare = entry.at("rare").get<bool>();
      combination.ignore = entry.value("ignore", false);
      for (const auto& channel : entry.at("channels")) {
        if (!combination.name.empty()) combination.name += "+";
        combination.name += channel.get<std::string>();
      }
    } catch (const nlohmann::ordered_json::exception& error) {
      throw Error(std::string("a combinations entry of labels.json is malformed (") + error.what() + ")",
                  "re-run `mlseg analyze` for this dataset")
          .located({source, "", ""});
    }
    if (combination.name.empty()) combination.name = "background";
    result.push_back(std::move(combination));
  }
  return result;
}

namespace {

bool is_subset(const std::vector<std::uint64_t>& small, const std::vector<std::uint64_t>& big) {
  for (size_t w = 0; w < small.size(); ++w) {
    const std::uint64_t b = w < big.size() ? big[w] : 0;
    if ((small[w] & ~b) != 0) return false;
  }
  return true;
}

int channel_count(const std::vector<std::uint64_t>& words) {
  int count = 0;
  for (const auto w : words) count += __builtin_popcountll(w);
  return count;
}

bool is_empty(const std::vector<std::uint64_t>& words) {
  for (const auto w : words) {
    if (w != 0) return false;
  }
  return true;
}

}  // namespace

RareCombinationPlan plan_rare_combinations(const std::vector<ObservedCombination>& observed, RareCombinationPolicy policy) {
  RareCombinationPlan plan;
  plan.policy = policy;
  if (policy == RareCombinationPolicy::keep) return plan;
  for (const auto& rare : observed) {
    if (!rare.rare || rare.ignore || is_empty(rare.code_words)) continue;
    RareCombinationPlan::Action action;
    action.name = rare.name;
    action.merge = policy == RareCombinationPolicy::merge;
    if (action.merge) {
      const ObservedCombination* best = nullptr;
      for (const auto& candidate : observed) {
        if (candidate.rare || candidate.ignore || is_empty(candidate.code_words)) continue;
        if (candidate.code_words == rare.code_words || !is_subset(candidate.code_words, rare.code_words)) continue;
        // Drop as few channel bits as possible, then prefer the most frequent combination.
        const int bits = channel_count(candidate.code_words);
        const int best_bits = best == nullptr ? -1 : channel_count(best->code_words);
        if (bits > best_bits || (bits == best_bits && candidate.voxels > best->voxels)) best = &candidate;
      }
      action.merged_into = best != nullptr ? best->code_words : std::vector<std::uint64_t>(rare.code_words.size(), 0);
      action.merged_into_name = best != nullptr ? best->name : "background";
    }
    plan.actions.emplace(rare.code_words, std::move(action));
  }
  return plan;
}

std::vector<RareCombinationChange> apply_rare_combination_plan(CodeVolume& code, const RareCombinationPlan& plan,
                                                               const std::vector<std::string>& channel_names) {
  std::vector<RareCombinationChange> changes;
  if (plan.actions.empty()) return changes;
  auto words64 = code_words_as_uint64(code);
  const int64_t num_words = words64.size(0), voxels = words64.size(1);
  auto* words = reinterpret_cast<std::uint64_t*>(words64.data_ptr<int64_t>());
  const int ignore_word = code.num_channels / 64, ignore_bit = code.num_channels % 64;

  // Keys padded to the volume's word count.
  std::map<std::vector<std::uint64_t>, std::pair<const RareCombinationPlan::Action*, std::int64_t>> lookup;
  for (const auto& [key, action] : plan.actions) {
    auto padded = key;
    padded.resize(static_cast<size_t>(num_words), 0);
    lookup.emplace(padded, std::make_pair(&action, std::int64_t{0}));
  }
  std::vector<std::uint64_t> voxel_code(static_cast<size_t>(num_words)), previous_code(static_cast<size_t>(num_words), 0);
  decltype(lookup)::iterator previous = lookup.end();
  bool changed = false;
  for (int64_t i = 0; i < voxels; ++i) {
    bool any = false;
    for (int64_t w = 0; w < num_words; ++w) {
      voxel_code[static_cast<size_t>(w)] = words[w * voxels + i];
      any |= voxel_code[static_cast<size_t>(w)] != 0;
    }
    if (!any || ((voxel_code[static_cast<size_t>(ignore_word)] >> ignore_bit) & 1u)) continue;
    if (voxel_code != previous_code) {
      previous = lookup.find(voxel_code);
      previous_code = voxel_code;
    }
    if (previous == lookup.end()) continue;
    auto& [action, count] = previous->second;
    ++count;
    changed = true;
    if (action->merge) {
      for (int64_t w = 0; w < num_words; ++w) {
        const size_t ws = static_cast<size_t>(w);
        words[w * voxels + i] = ws < action->merged_into.size() ? action->merged_into[ws] : 0;
      }
    } else {
      words[ignore_word * voxels + i] |= std::uint64_t{1} << ignore_bit;
    }
  }
  if (changed) store_code_words(code, words64);
  for (const auto& [key, entry] : lookup) {
    if (entry.second == 0) continue;
    RareCombinationChange change;
    change.code_words = key;
    change.combination = entry.first->name.empty() ? combination_name(key, channel_names) : entry.first->name;
    change.action = entry.first->merge ? "merged" : "ignored";
    if (entry.first->merge) {
      change.merged_into = entry.first->merged_into_name;
      change.merged_code_words = entry.first->merged_into;
    }
    change.voxels = entry.second;
    changes.push_back(std::move(change));
  }
  return changes;
}

}  // namespace mlseg
