// Training workloads of issue #7, on the reference configuration: 3D PlainConvUNet, 5 stages
// (32, 64, 128, 256, 320), kernels 3, strides 1/2/2/2/2, 1 input, 3 sigmoid outputs, deep
// supervision, patch 64^3, batch 2, DC + BCE, SGD (Nesterov 0.99, wd 3e-5), clip 12, 2 threads.
//   ./build/bench/mlseg_bench --benchmark_filter='TrainStepReference|ForwardReference64'
// Arg 0 = fp32, 1 = bf16 autocast. nnU-Net on this machine (PyTorch 1.13.1, OpenBLAS): 3.63 s per
// iteration, 0.50 s per forward (reference BLAS: 6.12 s / 1.32 s). MLSEG_BENCH_DEVICE=cuda: on the GPU.
#include <benchmark/benchmark.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/torch.h>

#include "bench_device.h"
#include "mlseg/nn/plain_conv_unet.h"
#include "mlseg/training/loss_deep_supervision.h"
#include "mlseg/training/optimizer.h"
#include "mlseg/training/training_step.h"

namespace {

constexpr int kThreads = 2;
constexpr std::int64_t kEdge = 64;

mlseg::PlainConvUNetOptions reference_options(bool deep_supervision) {
  const std::vector<std::int64_t> k{3, 3, 3}, down{2, 2, 2};
  return mlseg::PlainConvUNetOptions(1, 3)
      .dimension(3)
      .n_stages(5)
      .features_per_stage({32, 64, 128, 256, 320})
      .kernel_sizes({k, k, k, k, k})
      .strides({{1, 1, 1}, down, down, down, down})
      .deep_supervision(deep_supervision);
}

mlseg::Precision precision_of(const benchmark::State& state) {
  return state.range(0) == 0 ? mlseg::Precision::fp32 : mlseg::Precision::bf16;
}

void BM_TrainStepReference(benchmark::State& state) {
  const torch::Device device = mlseg_bench::bench_device();
  if (!mlseg_bench::device_usable(state, device)) return;
  torch::set_num_threads(kThreads);
  torch::manual_seed(0);
  mlseg::PlainConvUNet net(reference_options(true));
  net->to(device);
  net->train();
  auto optimizer = mlseg::make_optimizer(*net, mlseg::OptimizerOptions());
  const std::int64_t batch = 2;
  const torch::Tensor input = torch::randn({batch, 1, kEdge, kEdge, kEdge}).to(device);
  std::vector<torch::Tensor> targets;
  for (std::int64_t factor : {1, 2, 4, 8}) {
    const std::int64_t e = kEdge / factor;
    targets.push_back((torch::rand({batch, 3, e, e, e}) > 0.8).to(device, torch::kFloat));
  }
  const mlseg::LossOptions loss_options;
  const mlseg::Precision precision = precision_of(state);
  for (auto _ : state) {
    optimizer->zero_grad();
    std::vector<torch::Tensor> outputs;
    {
      mlseg::AutocastScope autocast(precision, device);
      outputs = net->forward(input);
    }
    for (auto& o : outputs) o = o.to(torch::kFloat);
    const torch::Tensor loss = mlseg::deep_supervision_loss(outputs, targets, {}, loss_options);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(net->parameters(), 12.0);
    optimizer->step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.SetLabel(mlseg::to_string(precision));
}
BENCHMARK(BM_TrainStepReference)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

void BM_ForwardReference64(benchmark::State& state) {
  const torch::Device device = mlseg_bench::bench_device();
  if (!mlseg_bench::device_usable(state, device)) return;
  torch::set_num_threads(kThreads);
  torch::manual_seed(0);
  mlseg::PlainConvUNet net(reference_options(false));
  net->to(device);
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::randn({1, 1, kEdge, kEdge, kEdge}).to(device);
  const mlseg::Precision precision = precision_of(state);
  for (auto _ : state) {
    mlseg::AutocastScope autocast(precision, device);
    benchmark::DoNotOptimize(net->forward(input)[0].data_ptr());
    mlseg_bench::synchronize(device);
  }
  state.SetLabel(mlseg::to_string(precision));
}
BENCHMARK(BM_ForwardReference64)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

}  // namespace
