#include "mlseg/training/validation_set.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "mlseg/core/error.h"
#include "mlseg/core/random.h"
#include "mlseg/core/text_table.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"

namespace mlseg {
namespace {

// Seeds of the two draws, apart from the training sampler's stream.
constexpr std::uint64_t kTargetedStream = 0x7a11da7e0001ULL;
constexpr std::uint64_t kTopUpStream = 0x7a11da7e0002ULL;

/// Where stored locations of one channel or combination live: (case, group index).
struct GroupSource {
  std::size_t case_index;
  std::size_t group;
};

PatchShapeZyx centred_corner(const PatchSampler& sampler, const StoredCase& stored, std::int64_t row,
                             const PatchShapeZyx& patch) {
  const CornerBounds bounds = sampler.corner_bounds(stored.shape_zyx());
  const auto location = stored.location(row);
  PatchShapeZyx begin{};
  for (int d = 0; d < 3; ++d) {
    begin[d] = std::clamp(location[d] - patch[d] / 2, bounds.lower[d], std::max(bounds.lower[d], bounds.upper[d]));
  }
  return begin;
}

}  // namespace

ValidationSet build_validation_set(const PreprocessedStore& store, const std::vector<std::size_t>& validation_cases,
                                   const ValidationSetOptions& options) {
  if (validation_cases.empty()) {
    throw Error("the fold has no validation case", "check splits_final.json (rerun `mlseg analyze`) or train with -f all");
  }
  const int channels = store.num_channels();
  const PatchShapeZyx patch = options.patch_size_zyx();
  const PatchSampler sampler(store,
                             SamplerOptions(options.batch_size(), patch)
                                 .foreground_oversample(options.foreground_oversample())
                                 .seed(options.seed() ^ kTopUpStream),
                             validation_cases);

  ValidationSet set;
  set.batch_size = options.batch_size();
  set.patch_size_zyx = patch;
  ValidationCoverage& coverage = set.coverage;
  coverage.channel_names = store.info().channel_names;
  coverage.validation_cases = static_cast<std::int64_t>(validation_cases.size());
  coverage.cases_with_channel.assign(static_cast<std::size_t>(channels), 0);
  coverage.patches_with_channel.assign(static_cast<std::size_t>(channels), 0);
  coverage.targeted_patches.assign(static_cast<std::size_t>(channels), 0);

  // Where each channel's (and each stored combination's) locations are, case by case.
  std::vector<std::vector<GroupSource>> channel_sources(static_cast<std::size_t>(channels));
  std::map<std::string, std::vector<GroupSource>> combination_sources;
  for (std::size_t case_index : validation_cases) {
    const StoredCase& stored = store.stored_case(case_index);
    const auto& voxels = stored.properties().channel_voxels;
    for (int c = 0; c < channels && c < static_cast<int>(voxels.size()); ++c) {
      if (voxels[static_cast<std::size_t>(c)] > 0) ++coverage.cases_with_channel[static_cast<std::size_t>(c)];
    }
    const auto& groups = stored.properties().locations;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (groups[g].count <= 0) continue;
      if (groups[g].kind == "channel" && groups[g].channel >= 0 && groups[g].channel < channels) {
        channel_sources[static_cast<std::size_t>(groups[g].channel)].push_back({case_index, g});
      } else if (groups[g].kind == "combination") {
        combination_sources[groups[g].name].push_back({case_index, g});
      }
    }
  }

  // Targeted patches: round-robin over the channels (then the combinations), each time over the
  // cases containing it, until each has its minimum or the budget is spent.
  struct Target {
    std::string purpose;
    const std::vector<GroupSource>* sources;
    int channel;  // -1 for a combination
  };
  std::vector<Target> targets;
  for (int c = 0; c < channels; ++c) {
    if (!channel_sources[static_cast<std::size_t>(c)].empty()) {
      targets.push_back({"channel " + coverage.channel_names[static_cast<std::size_t>(c)],
                         &channel_sources[static_cast<std::size_t>(c)], c});
    }
  }
  for (const auto& [name, sources] : combination_sources) {
    targets.push_back({"combination " + name, &sources, -1});
    coverage.combination_names.push_back(name);
    coverage.combination_patches.push_back(0);
  }
  const std::int64_t wanted = options.min_patches_per_channel() * static_cast<std::int64_t>(targets.size());
  std::int64_t budget = options.iterations() * options.batch_size();
  if (options.auto_iterations()) {
    const std::int64_t needed_batches = (wanted + options.batch_size() - 1) / options.batch_size();
    set.iterations = std::min(kMaxAutoValidationIterations, std::max(options.iterations(), needed_batches));
    budget = set.iterations * options.batch_size();
  } else {
    set.iterations = options.iterations();
  }
  SplitMix64 rng(options.seed() ^ kTargetedStream);
  for (std::int64_t round = 0; round < options.min_patches_per_channel(); ++round) {
    for (const Target& target : targets) {
      if (static_cast<std::int64_t>(set.patches.size()) >= budget) break;
      const GroupSource& source = (*target.sources)[static_cast<std::size_t>(round) % target.sources->size()];
      const StoredCase& stored = store.stored_case(source.case_index);
      const LocationGroup& group = stored.properties().locations[source.group];
      const std::int64_t row = group.offset + static_cast<std::int64_t>(rng.below(static_cast<std::size_t>(group.count)));
      set.patches.push_back({source.case_index, centred_corner(sampler, stored, row, patch), target.purpose});
    }
  }
  set.coverage_short = static_cast<std::int64_t>(set.patches.size()) < wanted;

  // Top-up with nnU-Net's draws over the validation cases.
  for (std::int64_t i = 0; static_cast<std::int64_t>(set.patches.size()) < budget; ++i) {
    const std::int64_t batch = i / options.batch_size(), slot = i % options.batch_size();
    const PatchDraw draw = sampler.sample(batch, slot);
    set.patches.push_back({draw.case_index, draw.begin_zyx, draw.forced ? "foreground" : "random"});
  }
  set.iterations = (static_cast<std::int64_t>(set.patches.size()) + options.batch_size() - 1) / options.batch_size();

  // Coverage: what the patches really contain.
  for (const ValidationPatch& p : set.patches) {
    const CutPatch cut = store.cut_patch(p.case_index, p.begin_zyx, patch);
    const std::vector<bool> has = count_channels_in_patch(cut.codes);
    for (int c = 0; c < channels; ++c) {
      if (has[static_cast<std::size_t>(c)]) ++coverage.patches_with_channel[static_cast<std::size_t>(c)];
    }
    if (p.purpose.rfind("channel ", 0) == 0) {
      for (int c = 0; c < channels; ++c) {
        if (p.purpose == "channel " + coverage.channel_names[static_cast<std::size_t>(c)]) {
          ++coverage.targeted_patches[static_cast<std::size_t>(c)];
        }
      }
    } else if (p.purpose.rfind("combination ", 0) == 0) {
      for (std::size_t k = 0; k < coverage.combination_names.size(); ++k) {
        if (p.purpose == "combination " + coverage.combination_names[k]) ++coverage.combination_patches[k];
      }
    }
  }
  return set;
}

std::string format_coverage_table(const ValidationSet& set, const std::string& fold_name) {
  const ValidationCoverage& coverage = set.coverage;
  std::ostringstream out;
  out << "Validation coverage (" << fold_name << ": " << coverage.validation_cases << " validation cases, "
      << set.patches.size() << " fixed patches in " << set.iterations << " batches, scored every epoch)\n";
  TextTable table({"channel", "val cases", "patches with it", "targeted"});
  for (std::size_t c = 0; c < coverage.channel_names.size(); ++c) {
    table.add_row({coverage.channel_names[c],
                   std::to_string(coverage.cases_with_channel[c]) + "/" + std::to_string(coverage.validation_cases),
                   std::to_string(coverage.patches_with_channel[c]),
                   coverage.cases_with_channel[c] > 0 ? std::to_string(coverage.targeted_patches[c]) : "-"});
  }
  for (std::size_t k = 0; k < coverage.combination_names.size(); ++k) {
    table.add_row({"[" + coverage.combination_names[k] + "]", "-", "-", std::to_string(coverage.combination_patches[k])});
  }
  out << table.render();
  for (std::size_t c = 0; c < coverage.channel_names.size(); ++c) {
    if (coverage.cases_with_channel[c] == 0) {
      out << "WARNING: CHANNEL \"" << coverage.channel_names[c] << "\" IS ABSENT FROM " << fold_name
          << "'S VALIDATION CASES: its validation Dice is n/a (absent_from_validation) and left out of the mean.\n"
          << "  fix: use the stratified splits `mlseg analyze` writes (splits_final.json), or train with -f all\n";
    }
  }
  if (set.coverage_short) {
    out << "WARNING: " << set.iterations << " validation batches are too few for "
        << "the minimum patches per channel; pass --val-iterations auto to raise the count until coverage holds\n";
  }
  return out.str();
}

}  // namespace mlseg
