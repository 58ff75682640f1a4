// Network and loss workloads.
//   ./build/bench/mlseg_bench --benchmark_filter=UNet
// BM_UNetForwardBackward3D: one training iteration without the optimizer step (forward with deep
// supervision, BCE + soft Dice over every output, backward) on the CPU for the Hippocampus-like
// plan: 3D patch 40x56x40, 4 stages of 32-256 features, batch 2, 1 input channel, 2 sigmoid
// outputs, 2 threads.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "mlseg/nn/plain_conv_unet.h"
#include "mlseg/training/loss_deep_supervision.h"

namespace {

constexpr int kThreads = 2;

mlseg::PlainConvUNetOptions hippocampus_like_options() {
  const std::vector<std::int64_t> k{3, 3, 3}, down{2, 2, 2};
  return mlseg::PlainConvUNetOptions(1, 2)
      .dimension(3)
      .n_stages(4)
      .features_per_stage({32, 64, 128, 256})
      .kernel_sizes({k, k, k, k})
      .strides({{1, 1, 1}, down, down, down})
      .deep_supervision(true);
}

void BM_UNetForwardBackward3D(benchmark::State& state) {
  torch::set_num_threads(kThreads);
  torch::manual_seed(0);
  mlseg::PlainConvUNet net(hippocampus_like_options());
  net->train();
  const std::int64_t batch = 2;
  const torch::Tensor input = torch::randn({batch, 1, 40, 56, 40});
  std::vector<torch::Tensor> targets;
  for (std::int64_t factor : {1, 2, 4}) {
    targets.push_back((torch::rand({batch, 2, 40 / factor, 56 / factor, 40 / factor}) > 0.8).to(torch::kFloat));
  }
  const mlseg::LossOptions options;
  for (auto _ : state) {
    net->zero_grad();
    const auto outputs = net->forward(input);
    const torch::Tensor loss = mlseg::deep_supervision_loss(outputs, targets, {}, options);
    loss.backward();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["parameters"] = static_cast<double>(mlseg::count_parameters(*net));
}
BENCHMARK(BM_UNetForwardBackward3D)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

}  // namespace
