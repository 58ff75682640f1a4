#include "mlseg/data/patch_sampler.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include "mlseg/core/error.h"
#include "mlseg/data/preprocessed_store.h"
#include "test_support.h"

namespace mlseg::testing {
// Defined in preprocessed_store_test.cpp.
void write_test_store_json(const std::filesystem::path& dir, int num_channels, int num_image_channels,
                           const std::vector<std::string>& case_ids, bool has_ignore);
void write_test_store_case(const std::filesystem::path& dir, const std::string& case_id, const torch::Tensor& image,
                           const CodeVolume& codes, const std::vector<std::uint64_t>& rare_codes);
}  // namespace mlseg::testing

namespace mlseg {
namespace {
using testing::TempDir;

/// A box of voxels [begin, end) carrying `bits` (OR-ed into the code).
struct Box {
  std::array<std::int64_t, 3> begin, end;
  std::uint64_t bits;
};
struct TestCase {
  std::array<std::int64_t, 3> shape;
  std::vector<Box> boxes;
  std::vector<std::uint64_t> rare_codes;
};

/// Writes a store of single-word (uint8) cases "case_000", ... with 3 channels.
void write_store(const std::filesystem::path& dir, const std::vector<TestCase>& cases, bool has_ignore = false) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "case_%03zu", i);
    ids.push_back(name);
  }
  testing::write_test_store_json(dir, 3, 1, ids, has_ignore);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CodeVolume codes = empty_code_volume(cases[i].shape, 3);
    for (const Box& box : cases[i].boxes) {
      auto region = codes.words[0].slice(0, box.begin[0], box.end[0]).slice(1, box.begin[1], box.end[1]).slice(2, box.begin[2], box.end[2]);
      region.bitwise_or_(static_cast<std::int64_t>(box.bits));
    }
    const auto& s = cases[i].shape;
    testing::write_test_store_case(dir, ids[i], torch::randn({1, s[0], s[1], s[2]}), codes, cases[i].rare_codes);
  }
}

bool same_draw(const PatchDraw& a, const PatchDraw& b) {
  return a.case_index == b.case_index && a.begin_zyx == b.begin_zyx && a.forced == b.forced &&
         a.forced_group == b.forced_group && a.forced_channel == b.forced_channel && a.location_zyx == b.location_zyx;
}

std::uint64_t code_at(const CodeVolume& codes, const std::array<std::int64_t, 3>& zyx) {
  return codes.words[0][zyx[0]][zyx[1]][zyx[2]].item<std::int64_t>();
}

TEST(PatchSampler, ForcedSamplesPerBatchFollowNnUNetFormula) {
  TempDir dir;
  write_store(dir.path(), {{{12, 12, 12}, {{{2, 2, 2}, {5, 5, 5}, 1}}, {}}});
  const PreprocessedStore store(dir.path());
  // round(bs * 0.67): bs 2 -> 1 (1 forced), 7 -> 5 (2 forced), 12 -> 8 (4 forced).
  const std::vector<std::pair<std::int64_t, std::int64_t>> expected{{2, 1}, {7, 2}, {12, 4}};
  for (const auto& [batch_size, forced] : expected) {
    const PatchSampler sampler(store, SamplerOptions(batch_size, {8, 8, 8}));
    EXPECT_EQ(sampler.forced_per_batch(), forced) << "batch size " << batch_size;
    const auto draws = sampler.sample_batch(3);
    ASSERT_EQ(static_cast<std::int64_t>(draws.size()), batch_size);
    for (std::int64_t j = 0; j < batch_size; ++j) {
      EXPECT_EQ(draws[j].forced, j >= batch_size - forced) << "batch size " << batch_size << ", sample " << j;
      if (draws[j].forced) EXPECT_EQ(draws[j].forced_channel, 0);
    }
  }
}

TEST(PatchSampler, ForcedSamplesContainTheirChannelAndAreCentredOnIt) {
  TempDir dir;
  // Channels near borders (so some corners are clamped) and a case thinner than the patch.
  write_store(dir.path(), {{{16, 16, 16}, {{{0, 0, 0}, {2, 3, 2}, 1}, {{13, 12, 14}, {16, 16, 16}, 2}}, {}},
                           {{6, 16, 16}, {{{2, 5, 5}, {4, 9, 9}, 4}, {{0, 0, 12}, {6, 2, 16}, 1}}, {}},
                           {{16, 16, 16}, {{{6, 6, 6}, {9, 9, 9}, 3}}, {}}});
  const PreprocessedStore store(dir.path());
  const PatchSampler sampler(store, SamplerOptions(2, {8, 8, 8}).foreground_oversample(1.0));
  int forced = 0, unclamped = 0;
  for (std::int64_t b = 0; b < 300; ++b) {
    for (const PatchDraw& draw : sampler.sample_batch(b)) {
      ASSERT_TRUE(draw.forced);
      ASSERT_GE(draw.forced_channel, 0);
      ++forced;
      const CutPatch patch = store.cut_patch(draw.case_index, draw.begin_zyx, {8, 8, 8});
      EXPECT_TRUE(count_channels_in_patch(patch.codes)[draw.forced_channel]);
      const std::uint64_t bit = std::uint64_t{1} << draw.forced_channel;
      EXPECT_TRUE(code_at(store.stored_case(draw.case_index).codes(), draw.location_zyx) & bit);
      bool clamped = false;
      for (int d = 0; d < 3; ++d) clamped = clamped || draw.begin_zyx[d] != draw.location_zyx[d] - 4;
      if (!clamped) {
        ++unclamped;
        EXPECT_TRUE(code_at(patch.codes, {4, 4, 4}) & bit) << "the centre voxel lacks the forced channel";
      }
    }
  }
  EXPECT_EQ(forced, 600);
  EXPECT_GT(unclamped, 100);
}

TEST(PatchSampler, UniformForcedChoiceIsUniformOverChannelsPresentInTheCase) {
  TempDir dir;
  // Channel 0 is large, channel 2 tiny, channel 1 absent: nnU-Net ignores size, picks 50/50.
  write_store(dir.path(), {{{16, 16, 16}, {{{0, 0, 0}, {16, 16, 8}, 1}, {{10, 10, 10}, {11, 11, 11}, 4}}, {}}});
  const PreprocessedStore store(dir.path());
  const PatchSampler sampler(store, SamplerOptions(2, {8, 8, 8}));
  std::array<int, 3> counts{};
  const int batches = 4000;
  for (std::int64_t b = 0; b < batches; ++b) ++counts[sampler.sample(b, 1).forced_channel];
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0] / static_cast<double>(batches), 0.5, 0.03);
  EXPECT_NEAR(counts[2] / static_cast<double>(batches), 0.5, 0.03);
}

/// analyze's sampling weights (1 / nnU-Net selection probability, mean 1 over present channels).
std::vector<double> analyze_weights(const std::vector<std::vector<int>>& present_per_case, int channels) {
  std::vector<double> selection(channels, 0.0);
  for (const auto& present : present_per_case) {
    for (const int c : present) selection[c] += 1.0 / present.size() / present_per_case.size();
  }
  std::vector<double> weights(channels, 0.0);
  double sum = 0;
  int weighted = 0;
  for (int c = 0; c < channels; ++c) {
    if (selection[c] > 0) {
      weights[c] = 1.0 / selection[c];
      sum += weights[c];
      ++weighted;
    }
  }
  for (auto& w : weights) w *= weighted / sum;
  return weights;
}

TEST(PatchSampler, InverseFrequencyGivesARareChannelItsTargetShareOfPatches) {
  TempDir dir;
  // 50 cases; channel 0 in every case, channel 1 only in case 7 (2% of cases).
  std::vector<TestCase> cases(50, TestCase{{12, 12, 12}, {{{1, 1, 1}, {5, 5, 5}, 1}}, {}});
  cases[7].boxes.push_back({{8, 8, 8}, {10, 10, 10}, 2});
  write_store(dir.path(), cases);
  std::vector<std::vector<int>> present(50, std::vector<int>{0});
  present[7].push_back(1);
  const std::vector<double> weights = analyze_weights(present, 3);
  const PreprocessedStore store(dir.path());

  auto measured_share = [&](const SamplerOptions& options) {
    const PatchSampler sampler(store, options);
    SamplingReportAccumulator accumulator(store.info().channel_names);
    for (std::int64_t b = 0; b < 1500; ++b) {
      for (const PatchDraw& draw : sampler.sample_batch(b)) {
        accumulator.add(store.cut_patch(draw.case_index, draw.begin_zyx, {6, 6, 6}).codes, draw);
      }
    }
    const SamplingReport report = accumulator.report();
    EXPECT_EQ(report.patches, 3000);
    EXPECT_EQ(report.forced_patches, 1500);
    return report.channel_share(1);
  };
  const SamplerOptions base = SamplerOptions(2, {6, 6, 6}).channel_weights(weights);
  const double forced_fraction = 0.5;  // batch size 2: 1 of 2 samples forced
  const double target = weights[1] / (weights[0] + weights[1]) * forced_fraction;
  ASSERT_NEAR(target, 0.495, 0.001);

  const double inverse = measured_share(SamplerOptions(base).forced_channel_weights(ForcedChannelWeights::inverse_frequency));
  EXPECT_GE(inverse, 0.8 * target) << "inverse_frequency share " << inverse;
  const double both = measured_share(SamplerOptions(base)
                                         .forced_channel_weights(ForcedChannelWeights::inverse_frequency)
                                         .case_sampling(CaseSampling::weighted));
  EXPECT_GE(both, 0.8 * target) << "inverse_frequency + weighted cases share " << both;
  // nnU-Net's uniform choice reaches the rare channel only through its case (1/50 x 1/2 forced).
  const double uniform = measured_share(SamplerOptions(base));
  EXPECT_LT(uniform, 0.05) << "uniform share " << uniform;
}

TEST(PatchSampler, WeightedCaseSamplingUsesTheLargestPresentChannelWeight) {
  TempDir dir;
  std::vector<TestCase> cases(4, TestCase{{10, 10, 10}, {{{1, 1, 1}, {3, 3, 3}, 1}}, {}});
  cases[2].boxes.push_back({{6, 6, 6}, {7, 7, 7}, 4});  // channel 2 in case 2
  cases[3].boxes.clear();                               // case 3: background only
  write_store(dir.path(), cases);
  const PreprocessedStore store(dir.path());
  const PatchSampler sampler(
      store, SamplerOptions(2, {6, 6, 6}).channel_weights({1.0, 0.5, 6.0}).case_sampling(CaseSampling::weighted));
  // Case weights 1, 1, max(1, 6) = 6, and the smallest positive weight 0.5 for the empty case.
  const std::vector<double> expected{1 / 8.5, 1 / 8.5, 6 / 8.5, 0.5 / 8.5};
  ASSERT_EQ(sampler.case_probabilities().size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(sampler.case_probabilities()[i], expected[i], 1e-12);
  std::array<int, 4> counts{};
  const int batches = 6000;
  for (std::int64_t b = 0; b < batches; ++b) ++counts[sampler.sample(b, 0).case_index];  // sample 0 is not forced
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(counts[i] / static_cast<double>(batches), expected[i], 0.02) << "case " << i;
}

TEST(PatchSampler, SameSeedGivesTheSameBatchesInAnyOrderAndOnAnyThread) {
  TempDir dir;
  write_store(dir.path(), {{{16, 16, 16}, {{{0, 0, 0}, {4, 4, 4}, 1}, {{9, 9, 9}, {12, 12, 12}, 6}}, {}},
                           {{12, 20, 9}, {{{3, 3, 3}, {5, 5, 5}, 2}}, {}},
                           {{16, 16, 16}, {}, {}}});
  const PreprocessedStore store(dir.path());
  const SamplerOptions options = SamplerOptions(7, {8, 8, 8}).seed(99);
  const PatchSampler sampler(store, options);
  const int batches = 120;
  std::vector<std::vector<PatchDraw>> forward(batches), backward(batches), threaded(batches);
  for (int b = 0; b < batches; ++b) forward[b] = sampler.sample_batch(b);
  for (int b = batches - 1; b >= 0; --b) backward[b] = sampler.sample_batch(b);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int b = t; b < batches; b += 3) threaded[b] = sampler.sample_batch(b);
    });
  }
  for (auto& thread : threads) thread.join();
  const PatchSampler again(store, options);  // a second sampler (another process) agrees too
  for (int b = 0; b < batches; ++b) {
    const auto fresh = again.sample_batch(b);
    for (int j = 0; j < 7; ++j) {
      EXPECT_TRUE(same_draw(forward[b][j], backward[b][j])) << "batch " << b << " sample " << j;
      EXPECT_TRUE(same_draw(forward[b][j], threaded[b][j])) << "batch " << b << " sample " << j;
      EXPECT_TRUE(same_draw(forward[b][j], fresh[j])) << "batch " << b << " sample " << j;
    }
  }
  const PatchSampler other(store, SamplerOptions(options).seed(100));
  int differing = 0;
  for (int b = 0; b < 20; ++b) differing += same_draw(other.sample(b, 0), forward[b][0]) ? 0 : 1;
  EXPECT_GT(differing, 10);
}

TEST(PatchSampler, RandomCornersFollowNnUNetBounds) {
  TempDir dir;
  write_store(dir.path(), {{{20, 5, 12}, {{{1, 1, 1}, {2, 2, 2}, 1}}, {}}});
  const PreprocessedStore store(dir.path());
  const PatchSampler sampler(store, SamplerOptions(4, {8, 8, 8}).final_patch_size_zyx({6, 8, 8}).foreground_oversample(0));
  // z: need_to_pad = 8 - 6 = 2 -> [-1, 20 + 1 - 8]; y: the case is thinner than the patch,
  // need_to_pad = 8 - 5 = 3 -> [-2, 5 + 1 + 1 - 8]; x: no padding -> [0, 12 - 8].
  const CornerBounds bounds = sampler.corner_bounds({20, 5, 12});
  EXPECT_EQ(bounds.lower, (PatchShapeZyx{-1, -2, 0}));
  EXPECT_EQ(bounds.upper, (PatchShapeZyx{13, -1, 4}));
  PatchShapeZyx low{100, 100, 100}, high{-100, -100, -100};
  for (std::int64_t b = 0; b < 500; ++b) {
    for (const PatchDraw& draw : sampler.sample_batch(b)) {
      ASSERT_FALSE(draw.forced);
      EXPECT_EQ(draw.forced_group, -1);
      for (int d = 0; d < 3; ++d) {
        low[d] = std::min(low[d], draw.begin_zyx[d]);
        high[d] = std::max(high[d], draw.begin_zyx[d]);
      }
    }
  }
  EXPECT_EQ(low, bounds.lower);  // every bound is reached and none is passed
  EXPECT_EQ(high, bounds.upper);
}

TEST(PatchSampler, RareCombinationTargetingCentresOnTheCombination) {
  TempDir dir;
  // Case 0: channels 0 and 1 overlap in a small cube (code 3, a rare combination).
  write_store(dir.path(), {{{16, 16, 16}, {{{0, 0, 0}, {8, 16, 16}, 1}, {{6, 6, 6}, {12, 12, 12}, 2}}, {3}},
                           {{16, 16, 16}, {{{0, 0, 0}, {4, 4, 4}, 1}}, {}}});
  const PreprocessedStore store(dir.path());
  const PatchSampler always(store, SamplerOptions(2, {8, 8, 8}).target_rare_combinations(1.0));
  for (std::int64_t b = 0; b < 200; ++b) {
    const PatchDraw draw = always.sample(b, 1);
    ASSERT_TRUE(draw.forced);
    if (draw.case_index == 0) {
      EXPECT_EQ(draw.forced_channel, -1);
      EXPECT_EQ(store.stored_case(0).properties().locations[draw.forced_group].kind, "combination");
      EXPECT_EQ(code_at(store.stored_case(0).codes(), draw.location_zyx), 3u);
    } else {
      EXPECT_EQ(draw.forced_channel, 0);  // no rare group: falls back to the case's channels
    }
  }
  const PatchSampler half(store, SamplerOptions(2, {8, 8, 8}).target_rare_combinations(0.5));
  int in_case_0 = 0, on_rare = 0;
  for (std::int64_t b = 0; b < 2000; ++b) {
    const PatchDraw draw = half.sample(b, 1);
    if (draw.case_index != 0) continue;
    ++in_case_0;
    on_rare += draw.forced_channel < 0 ? 1 : 0;
  }
  EXPECT_NEAR(on_rare / static_cast<double>(in_case_0), 0.5, 0.06);
}

TEST(PatchSampler, WithIgnoreFlagRandomCropsCentreOnAnnotatedVoxels) {
  TempDir dir;
  // Bit 3 (3 channels) is the ignore flag: z < 8 of case 0 is unannotated; case 1 is annotated
  // only at z = 4, 5 (where its channel-1 cube is), so its random crops often fall back.
  write_store(dir.path(),
              {{{16, 16, 16}, {{{0, 0, 0}, {8, 16, 16}, 8}, {{10, 2, 2}, {13, 5, 5}, 1}}, {}},
               {{16, 16, 16}, {{{0, 0, 0}, {4, 16, 16}, 8}, {{6, 0, 0}, {16, 16, 16}, 8}, {{4, 4, 4}, {6, 6, 6}, 2}}, {}}},
              /*has_ignore=*/true);
  const PreprocessedStore store(dir.path());
  const PatchSampler sampler(store, SamplerOptions(2, {8, 8, 8}).foreground_oversample(0));
  int fallbacks = 0;
  for (std::int64_t b = 0; b < 400; ++b) {
    for (const PatchDraw& draw : sampler.sample_batch(b)) {
      const StoredCase& stored = store.stored_case(draw.case_index);
      // After ignore_rejection_tries misses the crop centres on a stored channel location.
      if (draw.location_zyx[0] >= 0) {
        ++fallbacks;
        EXPECT_FALSE(code_at(stored.codes(), draw.location_zyx) & 8u);
        continue;
      }
      const PatchShapeZyx centre{draw.begin_zyx[0] + 4, draw.begin_zyx[1] + 4, draw.begin_zyx[2] + 4};
      EXPECT_FALSE(stored.is_ignored(centre)) << "case " << draw.case_index;
    }
  }
  EXPECT_GT(fallbacks, 0);
}

TEST(PatchSampler, InconsistentOptionsAreErrors) {
  TempDir dir;
  write_store(dir.path(), {{{10, 10, 10}, {{{1, 1, 1}, {3, 3, 3}, 1}}, {}}});
  const PreprocessedStore store(dir.path());
  auto expect_error = [&](const SamplerOptions& options, const std::string& words) {
    try {
      PatchSampler sampler(store, options);
      ADD_FAILURE() << "no error for " << words;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
    }
  };
  const SamplerOptions base(2, {6, 6, 6});
  expect_error(SamplerOptions(base).forced_channel_weights(ForcedChannelWeights::inverse_frequency), "channel_weights has 0 values");
  expect_error(SamplerOptions(base).case_sampling(CaseSampling::weighted).channel_weights({1, 1}), "3 channels");
  expect_error(SamplerOptions(base).forced_channel_weights(ForcedChannelWeights::user).channel_weights({0, 1, 1}),
               "weight 0");
  expect_error(SamplerOptions(base).channel_weights({1, -1, 1}).case_sampling(CaseSampling::weighted), ">= 0");
  expect_error(SamplerOptions(base).final_patch_size_zyx({7, 6, 6}), "final_patch_size_zyx");
  expect_error(SamplerOptions(base).foreground_oversample(1.5), "[0, 1]");
}

TEST(PatchSampler, CountChannelsInPatchReadsEveryWordAndSkipsTheIgnoreFlag) {
  CodeVolume small = empty_code_volume({2, 2, 2}, 3);
  small.words[0][1][1][1] = 1 | 8;  // channel 0 and the ignore flag
  EXPECT_EQ(count_channels_in_patch(small), (std::vector<bool>{true, false, false}));
  CodeVolume medium = empty_code_volume({2, 2, 2}, 9);  // int16 codes
  medium.words[0][0][0][1] = 1 << 8;
  medium.words[0][1][0][1] = 1 << 9;  // ignore
  std::vector<bool> expected(9, false);
  expected[8] = true;
  EXPECT_EQ(count_channels_in_patch(medium), expected);
  CodeVolume wide = empty_code_volume({2, 2, 2}, 70);  // two int64 words
  wide.words[0][0][0][0] = std::int64_t{1} << 63;
  wide.words[1][1][1][0] = 2;
  wide.words[1][1][1][1] = 1 << 6;  // ignore (bit 70)
  const auto present = count_channels_in_patch(wide);
  ASSERT_EQ(present.size(), 70u);
  EXPECT_EQ(std::count(present.begin(), present.end(), true), 2);
  EXPECT_TRUE(present[63]);
  EXPECT_TRUE(present[65]);
}

TEST(PatchSampler, SamplingReportCountsPatchesAndForcedTargets) {
  SamplingReportAccumulator accumulator({"a", "b"});
  CodeVolume with_a = empty_code_volume({2, 2, 2}, 2);
  with_a.words[0][0][0][0] = 1;
  CodeVolume with_both = empty_code_volume({2, 2, 2}, 2);
  with_both.words[0][1][0][0] = 3;
  PatchDraw random;
  PatchDraw forced_b;
  forced_b.forced = true;
  forced_b.forced_group = 1;
  forced_b.forced_channel = 1;
  PatchDraw forced_empty;
  forced_empty.forced = true;
  accumulator.add(with_a, random);
  accumulator.add(with_both, forced_b);
  accumulator.add(empty_code_volume({2, 2, 2}, 2), forced_empty);
  SamplingReport report = accumulator.report();
  EXPECT_EQ(report.channel_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(report.patches, 3);
  EXPECT_EQ(report.forced_patches, 2);
  EXPECT_EQ(report.forced_without_foreground, 1);
  EXPECT_EQ(report.patches_with_channel, (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(report.forced_on_channel, (std::vector<std::int64_t>{0, 1}));
  EXPECT_DOUBLE_EQ(report.channel_share(1), 1.0 / 3.0);
  accumulator.reset();
  report = accumulator.report();
  EXPECT_EQ(report.patches, 0);
  EXPECT_EQ(report.channel_names.size(), 2u);
}

}  // namespace
}  // namespace mlseg
