// The run context's collectives on c10d Gloo over loopback, two ranks as two threads of this
// process: sums, broadcasts, rank 0's decisions, gradient averaging, the batch-Dice sum with its
// gradient, setup errors on rank 0 reaching every rank; and the batch split against nnU-Net's
// _set_batch_size_and_oversample.
#include "mlseg/training/run_context.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include "mlseg/core/error.h"
#include "run_executable.h"

namespace {

using namespace mlseg;


// Runs `body` as ranks 0..world-1 of one group, each in its own thread; returns each rank's
// error message ("" when it finished).
std::vector<std::string> run_ranks(int world, const std::function<void(const RunContext&)>& body) {
  const int port = mlseg::testing::free_loopback_port();
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        LaunchEnvironment env;
        env.rank = rank;
        env.world_size = world;
        env.master_port = port;
        env.launcher = "torchrun";
        DistributedOptions options;
        options.collective_timeout_seconds = 30;
        const RunContext context = RunContext::join(env, torch::kCPU, options);
        body(context);
      } catch (const std::exception& error) {
        errors[static_cast<std::size_t>(rank)] = error.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return errors;
}

void expect_no_errors(const std::vector<std::string>& errors) {
  for (std::size_t r = 0; r < errors.size(); ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

// Python's round(): half to even.
std::int64_t python_round(double value) { return static_cast<std::int64_t>(std::nearbyint(value)); }

TEST(RunContext, OneProcessIsRankZeroAndCollectivesAreNoOps) {
  const RunContext context;
  EXPECT_TRUE(context.is_main());
  EXPECT_FALSE(context.distributed());
  torch::Tensor t = torch::ones({3});
  context.all_reduce_sum(t, "test");
  EXPECT_TRUE(torch::equal(t, torch::ones({3})));
  EXPECT_TRUE(context.main_decides(true, "test"));
  EXPECT_EQ(context.backend(), "none");
  bool ran = false;
  context.main_first("test", [&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(RunContext, BatchShareIsNnUNetsSplitAndForcedSamplesMatchItsPerRankOversampling) {
  for (double oversample : {0.33, 0.0, 0.5, 1.0, 0.2, 0.66}) {
    for (std::int64_t batch = 1; batch <= 16; ++batch) {
      // nnU-Net: sample i of the global batch is forced iff i >= round(B * (1 - p)).
      std::vector<bool> global_forced;
      for (std::int64_t i = 0; i < batch; ++i) global_forced.push_back(!(i < python_round(batch * (1 - oversample))));
      for (int world = 1; world <= batch; ++world) {
        std::vector<std::int64_t> per_gpu(static_cast<std::size_t>(world), batch / world);
        for (int i = 0; i < world; ++i) per_gpu[i] += (per_gpu[i] * world + i) < batch ? 1 : 0;
        std::int64_t low = 0;
        for (int rank = 0; rank < world; ++rank) {
          const RankShare share = rank_batch_share(batch, world, rank);
          const std::int64_t high = low + per_gpu[rank];
          ASSERT_EQ(share.begin, low) << batch << " " << world << " " << rank;
          ASSERT_EQ(share.end, high);
          // nnU-Net's per-rank oversample_percent, then its DataLoader's rule on local indices.
          double rank_oversample = 0;
          if (static_cast<double>(high) / batch < 1 - oversample) {
            rank_oversample = 0.0;
          } else if (static_cast<double>(low) / batch > 1 - oversample) {
            rank_oversample = 1.0;
          } else {
            rank_oversample = static_cast<double>(std::count(global_forced.begin() + low, global_forced.begin() + high, true)) /
                              static_cast<double>(per_gpu[rank]);
          }
          for (std::int64_t j = 0; j < per_gpu[rank]; ++j) {
            const bool nnunet_forced = !(j < python_round(per_gpu[rank] * (1 - rank_oversample)));
            // mlseg: the rank makes global samples [begin, end), forced by the global rule.
            ASSERT_EQ(nnunet_forced, global_forced[share.begin + j]) << "p " << oversample << " B " << batch << " W " << world;
          }
          low = high;
        }
      }
    }
  }
  EXPECT_THROW(rank_batch_share(2, 3, 0), Error);  // nnU-Net: batch size smaller than the GPUs
}

TEST(RunContext, SumsBroadcastsAndRankZeroDecides) {
  std::mutex mutex;
  std::vector<double> sums(2), broadcasts(2);
  std::vector<bool> decisions(2), anys(2), nones(2);
  expect_no_errors(run_ranks(2, [&](const RunContext& context) {
    EXPECT_TRUE(context.distributed());
    EXPECT_EQ(context.backend(), "gloo");
    torch::Tensor t = torch::full({4}, static_cast<double>(context.rank() + 1), torch::kDouble);
    context.all_reduce_sum(t, "sum");
    torch::Tensor b = torch::full({2}, static_cast<float>(10 * (context.rank() + 1)));
    context.broadcast_from_main(b, "broadcast");
    const bool decision = context.main_decides(context.rank() == 0, "decide");
    const bool any = context.any(context.rank() == 1, "any");
    const bool none = context.any(false, "none");
    context.barrier("barrier");
    std::lock_guard<std::mutex> lock(mutex);
    sums[context.rank()] = t[3].item<double>();
    broadcasts[context.rank()] = b[1].item<float>();
    decisions[context.rank()] = decision;
    anys[context.rank()] = any;
    nones[context.rank()] = none;
  }));
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(sums[r], 3.0);
    EXPECT_EQ(broadcasts[r], 10.0);
    EXPECT_TRUE(decisions[r]);
    EXPECT_TRUE(anys[r]);
    EXPECT_FALSE(nones[r]);
  }
}

TEST(RunContext, GradientsAndLossAreAveragedAndANonFiniteRankPoisonsAll) {
  std::mutex mutex;
  std::vector<torch::Tensor> first(2), second(2), missing(2), losses(2), poisoned(2);
  expect_no_errors(run_ranks(2, [&](const RunContext& context) {
    const double r = context.rank();
    torch::Tensor a = torch::zeros({3, 2}, torch::requires_grad());
    torch::Tensor b = torch::zeros({5}, torch::requires_grad());
    torch::Tensor unused = torch::zeros({2}, torch::requires_grad());
    a.mutable_grad() = torch::full({3, 2}, 1.0 + r);
    b.mutable_grad() = torch::arange(5, torch::kFloat) * (r + 1);
    torch::Tensor loss = torch::tensor(2.0f + 2 * static_cast<float>(r));
    context.average_gradients({a, b, unused}, loss);
    torch::Tensor c = torch::zeros({2}, torch::requires_grad());
    c.mutable_grad() = context.rank() == 1 ? torch::full({2}, std::numeric_limits<float>::quiet_NaN()) : torch::ones({2});
    torch::Tensor finite_loss = torch::tensor(1.0f);
    context.average_gradients({c}, finite_loss);
    std::lock_guard<std::mutex> lock(mutex);
    first[context.rank()] = a.grad().clone();
    second[context.rank()] = b.grad().clone();
    missing[context.rank()] = unused.grad().clone();
    losses[context.rank()] = loss.clone();
    poisoned[context.rank()] = c.grad().clone();
  }));
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::allclose(first[r], torch::full({3, 2}, 1.5)));
    EXPECT_TRUE(torch::allclose(second[r], torch::arange(5, torch::kFloat) * 1.5));
    EXPECT_TRUE(torch::equal(missing[r], torch::zeros({2})));
    EXPECT_FLOAT_EQ(losses[r].item<float>(), 3.0f);
    EXPECT_FALSE(torch::isfinite(poisoned[r]).all().item<bool>()) << "rank " << r << " would step while the other skips";
  }
}

TEST(RunContext, BatchDiceSumCarriesTheGradientOfEveryRank) {
  // A weight w shared by the ranks, each rank's share x_r = w * c_r. One process with both
  // shares: loss = sum((x_0 + x_1)^2), dloss/dw = sum(2 (x_0 + x_1) (c_0 + c_1)). Two ranks each
  // compute the same global loss through the sum across ranks; after the gradient average the
  // gradient of w must be the one-process gradient.
  const torch::Tensor c0 = torch::tensor({1.0, 2.0}, torch::kDouble), c1 = torch::tensor({3.0, -1.0}, torch::kDouble);
  const double w0 = 0.5;
  const double expected = (2 * w0 * (c0 + c1) * (c0 + c1)).sum().item<double>();
  std::mutex mutex;
  std::vector<double> grads(2);
  std::vector<torch::Tensor> values(2);
  expect_no_errors(run_ranks(2, [&](const RunContext& context) {
    torch::Tensor w = torch::tensor(w0, torch::kDouble).requires_grad_(true);
    const torch::Tensor x = w * (context.rank() == 0 ? c0 : c1);
    const torch::Tensor y = context.sum_across_ranks_with_grad(x);
    (y * y).sum().backward();
    torch::Tensor no_loss = torch::zeros({}, torch::kDouble);
    context.average_gradients({w}, no_loss);
    std::lock_guard<std::mutex> lock(mutex);
    grads[context.rank()] = w.grad().item<double>();
    values[context.rank()] = y.detach().clone();
  }));
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::allclose(values[r], w0 * (c0 + c1)));
    EXPECT_NEAR(grads[r], expected, 1e-12);
  }
}

TEST(RunContext, AnErrorOnRankZeroDuringSetupStopsEveryRankWithItsMessage) {
  const std::vector<std::string> errors = run_ranks(2, [&](const RunContext& context) {
    context.main_first("checking the fold folder", [] {
      throw Error("/x/fold_0 already holds a training run", "pass --resume to continue it, or --overwrite to start over");
    });
  });
  EXPECT_NE(errors[0].find("already holds a training run"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("rank 0 failed during checking the fold folder: /x/fold_0 already holds a training run"), std::string::npos)
      << errors[1];
  EXPECT_NE(errors[1].find("--resume"), std::string::npos) << errors[1];
}

}  // namespace
