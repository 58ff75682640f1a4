// Training batches: sampler draws cut at the augmentation's initial size, augmented to the patch.
#include "mlseg/data/training_batches.h"

#include <gtest/gtest.h>

#include <set>

#include "mlseg/core/error.h"
#include "mlseg/core/random.h"
#include "mlseg/data/augmentation.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace {

using namespace mlseg;

TEST(TrainingBatches, AugmentedBatchesHaveThePatchShapeAndAreDeterministicAcrossWorkers) {
  mlseg::testing::TempDir dir;
  PhantomOptions phantom;
  phantom.num_cases = 3;
  phantom.shape_zyx = {16, 32, 32};
  phantom.show_progress = false;
  phantom.threads = 1;
  write_phantom_dataset(dir / "raw/Dataset900_Phantom", phantom);
  PreprocessOptions options;
  options.work_dir = (dir / "work").string();
  options.show_progress = false;
  ASSERT_TRUE(preprocess_dataset(dir / "raw/Dataset900_Phantom", options).ok());
  const PreprocessedStore store(dir / "work/Dataset900_Phantom/preprocessed/3d_fullres");

  const TrainingBatchOptions batch_options = TrainingBatchOptions().patch_size_zyx({8, 16, 16}).seed(3);
  const PatchShapeZyx cut = training_cut_size(batch_options);
  EXPECT_GT(cut[1], 16) << "rotation and scaling need a larger cut";
  const PatchSampler sampler(store, SamplerOptions(3, cut).final_patch_size_zyx({8, 16, 16}));
  SamplingReportAccumulator report(store.info().channel_names);
  const Batch first = make_training_batch(store, sampler, batch_options, 4, &report);
  ASSERT_EQ(first.tensors.size(), 2u);
  EXPECT_EQ(first.tensors[0].sizes(), (std::vector<int64_t>{3, 1, 8, 16, 16}));
  EXPECT_EQ(first.tensors[1].sizes(), (std::vector<int64_t>{3, 1, 8, 16, 16}));
  EXPECT_EQ(first.case_ids.size(), 3u);
  EXPECT_EQ(report.report().patches, 3);

  // Same batch index: identical, whichever loader (or thread) made it.
  BatchLoader loader([&](int64_t i) { return make_training_batch(store, sampler, batch_options, i); },
                     LoaderOptions().workers(2).first_batch(3).num_batches(3));
  loader.next();
  const auto again = loader.next();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->index, 4);
  EXPECT_TRUE(torch::equal(again->tensors[0], first.tensors[0]));
  EXPECT_TRUE(torch::equal(again->tensors[1], first.tensors[1]));
  const Batch other = make_training_batch(store, sampler, batch_options, 5);
  EXPECT_FALSE(torch::equal(other.tensors[0], first.tensors[0]));

  const PatchSampler wrong(store, SamplerOptions(3, {8, 16, 16}));
  EXPECT_THROW(make_training_batch(store, wrong, batch_options, 0), Error);

  // Draws without rotation or scaling cut only the final patch: the same samples as cutting the
  // initial patch and augmenting it (the draws' cuts reach past the case: padding included).
  for (const double probability : {0.0, 0.5}) {
    TrainingBatchOptions plain = batch_options;
    plain.augmentation().spatial().rotation_probability(probability).scaling_probability(probability);
    for (std::int64_t index = 0; index < 6; ++index) {
      const Batch batch = make_training_batch(store, sampler, plain, index);
      const auto draws = sampler.sample_batch(index);
      for (std::size_t j = 0; j < draws.size(); ++j) {
        const CutPatch whole = store.cut_patch(draws[j].case_index, draws[j].begin_zyx, cut);
        SplitMix64 rng(augmentation_stream_seed(plain.seed(), index, static_cast<std::int64_t>(j)));
        const AugmentedSample expected = augment_sample(whole.image, whole.codes, plain.patch_size_zyx(), plain.augmentation(), rng);
        const auto at = static_cast<std::int64_t>(j);
        EXPECT_TRUE(torch::equal(batch.tensors[0][at], expected.image)) << "batch " << index << " sample " << j;
        EXPECT_TRUE(torch::equal(batch.tensors[1][at], expected.codes.words)) << "batch " << index << " sample " << j;
      }
    }
  }
}

// Every sample of a run gets augmentation draws of its own. The first design seeded sample j of
// batch i with SplitMix64(seed XOR golden * (i + 1)) advanced j + 1 times: for even seeds such as 2,
// 4, 8 and 10 sample 1 of batch i then repeated sample 0 of batch i + 1's draws (159 of 640 samples
// of seed 2's first 320 batches).
TEST(TrainingBatches, EverySampleOfARunHasItsOwnAugmentationStream) {
  for (std::uint64_t seed : {1ULL, 2ULL, 4ULL, 8ULL, 10ULL, 12345ULL}) {
    std::set<std::uint64_t> augmentation, sampler;
    for (std::int64_t batch = 0; batch < 1000; ++batch) {
      for (std::int64_t sample = 0; sample < 4; ++sample) {
        EXPECT_TRUE(augmentation.insert(augmentation_stream_seed(seed, batch, sample)).second)
            << "seed " << seed << ", batch " << batch << ", sample " << sample << " repeats another sample's augmentation stream";
        sampler.insert(stream_seed(seed, batch, sample));
      }
    }
    for (std::uint64_t s : augmentation)
      EXPECT_EQ(sampler.count(s), 0u) << "seed " << seed << ": an augmentation stream is a sampler stream";
    // Consecutive streams are unrelated: their first numbers agree in about half of their bits.
    double agreeing_bits = 0;
    for (std::int64_t batch = 0; batch < 1000; ++batch) {
      const std::uint64_t a = SplitMix64(augmentation_stream_seed(seed, batch, 1)).next();
      const std::uint64_t b = SplitMix64(augmentation_stream_seed(seed, batch + 1, 0)).next();
      agreeing_bits += 64 - __builtin_popcountll(a ^ b);
    }
    EXPECT_NEAR(agreeing_bits / 1000, 32.0, 1.0) << "seed " << seed;
  }
}

}  // namespace
