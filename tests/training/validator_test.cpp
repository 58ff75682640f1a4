// Validation: Dice from summed counts with explicit reasons, guarded EMA, the fixed stratified
// patch set.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "mlseg/analysis/splits.h"
#include "mlseg/core/error.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/io/json_file.h"
#include "mlseg/training/validation_set.h"
#include "mlseg/training/validator.h"
#include "training_test_support.h"

namespace {

using namespace mlseg;

ConfusionCounts counts(std::int64_t tp, std::int64_t fp, std::int64_t fn) {
  ConfusionCounts c;
  c.tp = tp;
  c.fp = fp;
  c.fn = fn;
  return c;
}

TEST(Validator, DiceFromSummedCountsNamesEveryUndefinedCase) {
  EXPECT_DOUBLE_EQ(validation_dice(counts(3, 1, 1), true).value(), 6.0 / 8.0);
  EXPECT_DOUBLE_EQ(validation_dice(counts(0, 5, 2), true).value(), 0.0);
  // No support (no reference voxel in the pass): n/a whatever the false positives.
  EXPECT_EQ(validation_dice(counts(0, 5, 0), false).reason(), UndefinedReason::absent_from_validation);
  EXPECT_EQ(validation_dice(counts(0, 5, 0), true).reason(), UndefinedReason::ref_empty);
  const MetricValue both = validation_dice(counts(0, 0, 0), true);
  ASSERT_FALSE(both.defined());
  EXPECT_EQ(both.reason(), UndefinedReason::both_empty);
  const MetricValue absent = validation_dice(counts(0, 0, 0), false);
  ASSERT_FALSE(absent.defined());
  EXPECT_EQ(absent.reason(), UndefinedReason::absent_from_validation);
  EXPECT_EQ(absent.format(), "n/a (absent_from_validation)");
}

TEST(Validator, MeanSaysHowManyChannelsItCovers) {
  const std::vector<MetricValue> values{MetricValue::of(0.5), MetricValue::undefined(UndefinedReason::both_empty),
                                        MetricValue::of(1.0)};
  int n = 0;
  EXPECT_DOUBLE_EQ(*mean_under_policy(values, EmptyPolicy::exclude, &n), 0.75);
  EXPECT_EQ(n, 2);
  EXPECT_DOUBLE_EQ(*mean_under_policy(values, EmptyPolicy::zero, &n), 0.5);
  EXPECT_EQ(n, 3);
  EXPECT_DOUBLE_EQ(*mean_under_policy(values, EmptyPolicy::one, &n), 2.5 / 3);
  const std::vector<MetricValue> none{MetricValue::undefined(UndefinedReason::absent_from_validation)};
  EXPECT_FALSE(mean_under_policy(none, EmptyPolicy::exclude, &n).has_value());
  EXPECT_EQ(n, 0);
  EXPECT_EQ(format_mean(std::nullopt, 0, 1), "n/a (no channel has a value)");
  EXPECT_EQ(format_mean(0.75, 2, 3), "0.7500 (2 of 3 channels)");
}

TEST(Validator, EmaTakesTheFirstValueAndNeverSeesNaN) {
  DiceEma ema;
  EXPECT_FALSE(ema.update(std::nullopt).has_value());  // nothing yet: stays empty, not NaN
  EXPECT_DOUBLE_EQ(*ema.update(0.5), 0.5);
  EXPECT_DOUBLE_EQ(*ema.update(std::numeric_limits<double>::quiet_NaN()), 0.5);
  EXPECT_DOUBLE_EQ(*ema.update(std::nullopt), 0.5);
  EXPECT_DOUBLE_EQ(*ema.update(1.0), 0.9 * 0.5 + 0.1 * 1.0);
}

TEST(ValidationSet, CoversEveryPresentChannelDeterministically) {
  mlseg::testing::TempDir dir;
  const auto data = mlseg::testing::make_tiny_training_dataset(dir.path(), 10, PhantomLabelFormat::bitmask);
  const PreprocessedStore store(data.dataset_work / "preprocessed/3d_fullres");
  const auto folds = folds_from_json(read_json_file(data.dataset_work / "splits_final.json"), "splits");
  std::vector<std::size_t> val;
  for (const auto& id : folds[0].val) val.push_back(store.case_index(id));

  const auto options = ValidationSetOptions(2, {8, 16, 16}).iterations(50).seed(7);
  const ValidationSet set = build_validation_set(store, val, options);
  EXPECT_EQ(set.patches.size(), 100u);
  EXPECT_EQ(set.iterations, 50);
  EXPECT_FALSE(set.coverage_short);
  for (int c = 0; c < store.num_channels(); ++c) {
    if (!set.coverage.present(c)) {
      EXPECT_EQ(set.coverage.patches_with_channel[c], 0) << set.coverage.channel_names[c];
      continue;
    }
    EXPECT_GE(set.coverage.targeted_patches[c], kDefaultMinPatchesPerChannel) << set.coverage.channel_names[c];
    EXPECT_GE(set.coverage.patches_with_channel[c], kDefaultMinPatchesPerChannel) << set.coverage.channel_names[c];
  }
  const ValidationSet again = build_validation_set(store, val, options);
  ASSERT_EQ(again.patches.size(), set.patches.size());
  for (std::size_t i = 0; i < set.patches.size(); ++i) {
    EXPECT_EQ(again.patches[i].case_index, set.patches[i].case_index);
    EXPECT_EQ(again.patches[i].begin_zyx, set.patches[i].begin_zyx);
  }
  // Too small a budget is reported; auto raises the count until coverage holds.
  const ValidationSet small = build_validation_set(store, val, ValidationSetOptions(2, {8, 16, 16}).iterations(1));
  EXPECT_TRUE(small.coverage_short);
  EXPECT_NE(format_coverage_table(small, "fold 0").find("--val-iterations auto"), std::string::npos);
  const ValidationSet automatic =
      build_validation_set(store, val, ValidationSetOptions(2, {8, 16, 16}).iterations(1).auto_iterations(true));
  EXPECT_FALSE(automatic.coverage_short);
  EXPECT_GT(automatic.iterations, 1);
  EXPECT_THROW(build_validation_set(store, {}, options), Error);
}

}  // namespace
