// Training batches: sampler draws cut at the augmentation's initial size, augmented to the patch.
#include <gtest/gtest.h>

#include "mlseg/core/error.h"
#include "mlseg/data/augmentation.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/data/training_batches.h"
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
        SplitMix64 mixer(plain.seed() ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(index + 1)));
        for (std::size_t k = 0; k <= j; ++k) mixer.next();
        SplitMix64 rng(mixer.next());
        const AugmentedSample expected =
            augment_sample(whole.image, whole.codes, plain.patch_size_zyx(), plain.augmentation(), rng);
        const auto at = static_cast<std::int64_t>(j);
        EXPECT_TRUE(torch::equal(batch.tensors[0][at], expected.image)) << "batch " << index << " sample " << j;
        EXPECT_TRUE(torch::equal(batch.tensors[1][at], expected.codes.words)) << "batch " << index << " sample " << j;
      }
    }
  }
}

}  // namespace
