// The data pipeline on a store written by the real `mlseg preprocess` (not a hand-made one):
// the reader accepts it, forced patches contain their channel, and batches have the right shapes.
#include <gtest/gtest.h>

#include "mlseg/data/batch_loader.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace {

using namespace mlseg;

TEST(StoreFromPreprocess, SamplerAndLoaderReadWhatPreprocessWrote) {
  mlseg::testing::TempDir dir;
  PhantomOptions phantom;
  phantom.num_cases = 5;
  phantom.shape_zyx = {16, 32, 32};
  phantom.num_channels = 6;
  phantom.show_progress = false;
  phantom.threads = 1;
  write_phantom_dataset(dir / "raw/Dataset900_Phantom", phantom);
  PreprocessOptions options;
  options.work_dir = (dir / "work").string();
  options.show_progress = false;
  options.threads = 2;
  ASSERT_TRUE(preprocess_dataset(dir / "raw/Dataset900_Phantom", options).ok());

  const PreprocessedStore store(dir / "work/Dataset900_Phantom/preprocessed/3d_fullres");
  ASSERT_EQ(store.num_cases(), 5u);
  ASSERT_EQ(store.num_channels(), 6);
  const PatchSampler sampler(store, SamplerOptions(4, {16, 24, 24}).seed(7));
  EXPECT_EQ(sampler.forced_per_batch(), 1);  // round(4 * 0.67) = 3 random, 1 forced
  SamplingReportAccumulator report(store.info().channel_names);
  for (int64_t b = 0; b < 20; ++b) {
    const Batch batch = cut_patch_batch(store, sampler, b, &report);
    ASSERT_EQ(batch.tensors.size(), 2u);
    EXPECT_EQ(batch.tensors[0].sizes(), (std::vector<int64_t>{4, 1, 16, 24, 24}));
    EXPECT_EQ(batch.tensors[1].sizes(), (std::vector<int64_t>{4, 1, 16, 24, 24}));
    for (const auto& draw : sampler.sample_batch(b)) {
      if (!draw.forced || draw.forced_channel < 0) continue;
      const auto& stored = store.stored_case(draw.case_index);
      EXPECT_TRUE((stored.code_word_at(0, draw.location_zyx) >> draw.forced_channel) & 1u);
    }
  }
  const SamplingReport summary = report.report();
  EXPECT_EQ(summary.patches, 80);
  EXPECT_EQ(summary.forced_patches, 20);
  EXPECT_GT(summary.patches_with_channel[0], 60) << "body is in almost every patch";
}

}  // namespace
