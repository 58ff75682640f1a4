#include "mlseg/data/batch_loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "mlseg/core/error.h"
#include "mlseg/core/random.h"
#include "mlseg/data/patch_sampler.h"
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
using namespace std::chrono_literals;

/// Batch i: one [2, 3] tensor filled with i, after a sleep that varies with i so that workers
/// finish out of order.
Batch slow_batch(std::int64_t index) {
  SplitMix64 rng(static_cast<std::uint64_t>(index));
  std::this_thread::sleep_for(std::chrono::microseconds(rng.below(3000)));
  return Batch{index, {torch::full({2, 3}, static_cast<float>(index))}, {"case_" + std::to_string(index % 5)}};
}

std::vector<Batch> drain(int workers, std::int64_t num_batches) {
  BatchLoader loader(slow_batch, LoaderOptions().workers(workers).prefetch(4).num_batches(num_batches));
  std::vector<Batch> batches;
  while (auto batch = loader.next()) batches.push_back(std::move(*batch));
  return batches;
}

TEST(BatchLoader, BatchesComeInIndexOrderWithOneOrThreeWorkers) {
  const auto one = drain(1, 30);
  const auto three = drain(3, 30);
  ASSERT_EQ(one.size(), 30u);
  ASSERT_EQ(three.size(), 30u);
  for (std::int64_t i = 0; i < 30; ++i) {
    EXPECT_EQ(one[i].index, i);
    EXPECT_EQ(three[i].index, i);
    EXPECT_TRUE(torch::equal(one[i].tensors[0], three[i].tensors[0]));
    EXPECT_EQ(three[i].tensors[0][0][0].item<float>(), static_cast<float>(i));
    EXPECT_EQ(one[i].case_ids, three[i].case_ids);
  }
}

TEST(BatchLoader, StartsAtFirstBatchAndEndsAfterNumBatches) {
  BatchLoader loader(slow_batch, LoaderOptions().workers(2).first_batch(10).num_batches(3));
  std::vector<std::int64_t> indices;
  while (auto batch = loader.next()) indices.push_back(batch->index);
  EXPECT_EQ(indices, (std::vector<std::int64_t>{10, 11, 12}));
  EXPECT_FALSE(loader.next().has_value());
}

TEST(BatchLoader, WorkerErrorNamesTheBatchAndItsCasesAndLoadingGoesOn) {
  auto make = [](std::int64_t index) {
    note_batch_cases({"liver_003", "liver_017"});
    if (index == 5) throw std::runtime_error("disk read failed");
    if (index == 7) throw Error("codes are corrupt", "re-run preprocess", {"x_seg.npy", "liver_017", ""});
    return Batch{index, {torch::zeros({1})}, {}};
  };
  BatchLoader loader(make, LoaderOptions().workers(3).num_batches(9));
  for (std::int64_t i = 0; i < 9; ++i) {
    if (i == 5 || i == 7) {
      try {
        loader.next();
        ADD_FAILURE() << "batch " << i << " did not throw";
      } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("batch " + std::to_string(i)), std::string::npos) << message;
        EXPECT_NE(message.find("liver_003, liver_017"), std::string::npos) << message;
        EXPECT_NE(message.find(i == 5 ? "disk read failed" : "codes are corrupt"), std::string::npos) << message;
        if (i == 7) {
          EXPECT_EQ(error.where().file, "x_seg.npy");
          EXPECT_EQ(error.fix(), "re-run preprocess");
        }
      }
      continue;
    }
    const auto batch = loader.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_EQ(batch->index, i);
    EXPECT_EQ(batch->case_ids, (std::vector<std::string>{"liver_003", "liver_017"}));  // taken from the note
  }
}

TEST(BatchLoader, DestroyingTheLoaderEarlyStopsTheWorkers) {
  std::atomic<std::int64_t> made{0};
  const auto start = std::chrono::steady_clock::now();
  {
    BatchLoader loader(
        [&](std::int64_t index) {
          ++made;
          std::this_thread::sleep_for(2ms);
          return Batch{index, {}, {}};
        },
        LoaderOptions().workers(3).prefetch(2));  // no end: only the destructor stops it
    EXPECT_EQ(loader.next()->index, 0);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  // Bounded queue: at most the delivered batch + prefetch + one in flight per worker.
  EXPECT_LE(made.load(), 1 + 2 + 3);
  {
    BatchLoader unused(slow_batch, LoaderOptions().workers(2));  // destroyed before any next()
  }
}

TEST(BatchLoader, AssembleStacksSamplesAndRejectsMismatches) {
  const Batch batch = assemble_batch(4,
                                     {{torch::full({2, 3}, 1.0f), torch::full({5}, 7, torch::kUInt8)},
                                      {torch::full({2, 3}, 2.0f), torch::full({5}, 8, torch::kUInt8)}},
                                     {"a", "b"});
  EXPECT_EQ(batch.index, 4);
  ASSERT_EQ(batch.tensors.size(), 2u);
  EXPECT_EQ(batch.tensors[0].sizes(), (std::vector<std::int64_t>{2, 2, 3}));
  EXPECT_TRUE(batch.tensors[0].is_contiguous());
  EXPECT_EQ(batch.tensors[0][1][1][2].item<float>(), 2.0f);
  EXPECT_EQ(batch.tensors[1].scalar_type(), torch::kUInt8);
  EXPECT_EQ(batch.tensors[1][1][0].item<int>(), 8);
  EXPECT_THROW(assemble_batch(0, {{torch::zeros({2})}, {torch::zeros({3})}}), Error);
  EXPECT_THROW(assemble_batch(0, {{torch::zeros({2})}, {torch::zeros({2}), torch::zeros({2})}}), Error);
}

TEST(BatchLoader, CutPatchBatchesFromAStoreAreTheSameWithAnyWorkerCount) {
  testing::TempDir dir;
  std::vector<std::string> ids{"a", "b", "c"};
  testing::write_test_store_json(dir.path(), 2, 1, ids, false);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    CodeVolume codes = empty_code_volume({10, 12, 14}, 2);
    codes.words[0].slice(0, 2, 5).slice(1, 3, 6).slice(2, static_cast<std::int64_t>(2 * i), static_cast<std::int64_t>(2 * i + 4)).fill_(1 + 2 * static_cast<int>(i % 2));
    testing::write_test_store_case(dir.path(), ids[i], torch::randn({1, 10, 12, 14}), codes, {});
  }
  const PreprocessedStore store(dir.path());
  const PatchSampler sampler(store, SamplerOptions(3, {8, 8, 8}).seed(5));
  SamplingReportAccumulator report(store.info().channel_names);
  auto run = [&](int workers, SamplingReportAccumulator* accumulate) {
    BatchLoader loader([&](std::int64_t i) { return cut_patch_batch(store, sampler, i, accumulate); },
                       LoaderOptions().workers(workers).num_batches(12));
    std::vector<Batch> batches;
    while (auto batch = loader.next()) batches.push_back(std::move(*batch));
    return batches;
  };
  const auto one = run(1, &report);
  const auto three = run(3, nullptr);
  ASSERT_EQ(one.size(), 12u);
  for (std::size_t b = 0; b < one.size(); ++b) {
    ASSERT_EQ(one[b].tensors.size(), 2u);
    EXPECT_EQ(one[b].tensors[0].sizes(), (std::vector<std::int64_t>{3, 1, 8, 8, 8}));
    EXPECT_EQ(one[b].tensors[1].sizes(), (std::vector<std::int64_t>{3, 1, 8, 8, 8}));
    EXPECT_EQ(one[b].tensors[1].scalar_type(), torch::kUInt8);
    EXPECT_TRUE(torch::equal(one[b].tensors[0], three[b].tensors[0]));
    EXPECT_TRUE(torch::equal(one[b].tensors[1], three[b].tensors[1]));
    EXPECT_EQ(one[b].case_ids, three[b].case_ids);
    const auto draws = sampler.sample_batch(static_cast<std::int64_t>(b));
    for (std::size_t j = 0; j < draws.size(); ++j) {  // the same as cutting each patch alone
      const CutPatch alone = store.cut_patch(draws[j].case_index, draws[j].begin_zyx, {8, 8, 8});
      EXPECT_TRUE(torch::equal(one[b].tensors[0][j], alone.image));
      EXPECT_TRUE(torch::equal(one[b].tensors[1][j], alone.codes.words));
    }
    // The last sample of every batch is forced (round(3 x 0.67) = 2): its patch has foreground.
    EXPECT_GT(one[b].tensors[1][2].count_nonzero().item<std::int64_t>(), 0);
  }
  const SamplingReport counted = report.report();
  EXPECT_EQ(counted.patches, 36);
  EXPECT_EQ(counted.forced_patches, 12);
  EXPECT_GE(counted.patches_with_channel[0], 12);  // every case has channel 0 ...
  EXPECT_EQ(counted.forced_on_channel[0] + counted.forced_on_channel[1], 12);
}

}  // namespace
}  // namespace mlseg
