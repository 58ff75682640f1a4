// Sliding-window inference (issue 8).
//   ./build/bench/mlseg_bench --benchmark_filter=SlidingWindow160
// Reference network: 3D PlainConvUNet, 5 stages (32, 64, 128, 256, 320), kernels 3, strides
// [1, 2, 2, 2, 2], 1 input, 3 sigmoid outputs; one 1x160^3 volume, 64^3 tiles, step 0.5
// (4^3 = 64 tiles), 2 threads, fp32. _TTA adds mirroring over z, y, x (8 passes per tile).
// nnU-Net's figure: ../shared/peers/run sliding_window --modes nomirror (its
// predict_sliding_window_return_logits on the same network and volume), run in the same sitting;
// issue #23's target is <= 0.6x of it for BM_SlidingWindow160/1/1.
// Default: tiles one at a time through the network's fused inference forward (fused_norm.h).
// BM_SlidingWindow160_NnUNetLoop runs nnU-Net's loop (one tile per forward, fp16 accumulators,
// plain network forward) in this process, so that both are measured under the same load.
// MLSEG_BENCH_DEVICE=cuda runs BM_SlidingWindow160(_TTA) on the GPU (the fused forward is CPU-only).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bench_device.h"
#include "mlseg/inference/block_reuse.h"
#include "mlseg/inference/sliding_window.h"
#include "mlseg/nn/inference_kernels.h"
#include "mlseg/nn/plain_conv_unet.h"
#include "mlseg/nn/residual_encoder_unet.h"
#include "mlseg/nn/winograd_conv.h"

namespace {

constexpr int kThreads = 2;

mlseg::PlainConvUNet reference_network() {
  const std::vector<std::int64_t> k{3, 3, 3}, down{2, 2, 2};
  torch::manual_seed(0);
  mlseg::PlainConvUNet network(mlseg::PlainConvUNetOptions(1, 3)
                                   .dimension(3)
                                   .n_stages(5)
                                   .features_per_stage({32, 64, 128, 256, 320})
                                   .kernel_sizes({k, k, k, k, k})
                                   .strides({{1, 1, 1}, down, down, down, down}));
  network->eval();
  return network;
}

void run_sliding_window(benchmark::State& state, bool mirroring, mlseg::Precision precision = mlseg::Precision::fp32) {
  const torch::Device device = mlseg_bench::bench_device();
  if (!mlseg_bench::device_usable(state, device)) return;
  at::set_num_threads(kThreads);
  const mlseg::PlainConvUNet network = reference_network();
  torch::manual_seed(1);
  const torch::Tensor image = torch::randn({1, 160, 160, 160});
  mlseg::SlidingWindowOptions options({64, 64, 64});
  options.step_size(0.5).tile_batch(static_cast<int>(state.range(0))).fused_forward(state.range(1) != 0).device(device).precision(precision);
  if (mirroring) options.mirror_axes({0, 1, 2});
  for (auto _ : state) {
    const torch::Tensor logits = mlseg::sliding_window_logits(std::vector<mlseg::SegmentationNetwork>{network}, image, options);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  state.counters["tiles"] = 64;
  state.counters["passes_per_tile"] = mirroring ? 8 : 1;
}

void BM_SlidingWindow160(benchmark::State& state) { run_sliding_window(state, false); }
// The default route with every convolution direct (oneDNN): Winograd off (MLSEG_WINOGRAD=0).
void BM_SlidingWindow160_Direct(benchmark::State& state) {
  mlseg::set_winograd_enabled(false);
  run_sliding_window(state, false);
  mlseg::set_winograd_enabled(true);
}
void BM_SlidingWindow160_TTA(benchmark::State& state) { run_sliding_window(state, true); }
// bf16 (predict --precision bf16, the auto choice on a CPU with AVX512-BF16 or AMX-BF16).
void BM_SlidingWindow160_Bf16(benchmark::State& state) { run_sliding_window(state, false, mlseg::Precision::bf16); }

// nnU-Net's predict_sliding_window_return_logits, step for step: one tile per forward, logits
// times the Gaussian added into fp16 accumulators, weights in fp16, one division at the end.
void BM_SlidingWindow160_NnUNetLoop(benchmark::State& state) {
  at::set_num_threads(kThreads);
  mlseg::PlainConvUNet network = reference_network();
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  const torch::Tensor image = torch::randn({1, 160, 160, 160});
  const torch::Tensor gaussian = mlseg::gaussian_importance_map({64, 64, 64}).to(torch::kHalf);
  const auto steps = mlseg::sliding_window_steps(160, 64, 0.5);
  for (auto _ : state) {
    torch::Tensor logits = torch::zeros({3, 160, 160, 160}, torch::kHalf);
    torch::Tensor weights = torch::zeros({160, 160, 160}, torch::kHalf);
    for (auto z : steps) {
      for (auto y : steps) {
        for (auto x : steps) {
          const torch::Tensor tile = image.slice(1, z, z + 64).slice(2, y, y + 64).slice(3, x, x + 64).unsqueeze(0);
          torch::Tensor prediction = network->forward(tile).front()[0].to(torch::kHalf);
          prediction *= gaussian;
          logits.slice(1, z, z + 64).slice(2, y, y + 64).slice(3, x, x + 64) += prediction;
          weights.slice(0, z, z + 64).slice(1, y, y + 64).slice(2, x, x + 64) += gaussian;
        }
      }
    }
    logits /= weights;
    benchmark::DoNotOptimize(logits.data_ptr());
  }
}

// Multiply-adds x 2 of the reference network's forward on one 64^3 tile (no deep supervision):
// every encoder and decoder conv, the transposed convs and the head; norms and activations are
// below 1 % and left out. 118.2 GFLOP.
double reference_tile_flops() {
  const std::vector<double> features{32, 64, 128, 256, 320};
  double flops = 0, voxels = 64.0 * 64 * 64, in = 1;
  std::vector<double> stage_voxels;
  for (std::size_t s = 0; s < features.size(); ++s) {
    if (s > 0) voxels /= 8;
    stage_voxels.push_back(voxels);
    flops += 2 * 27 * (in + features[s]) * features[s] * voxels;  // conv 1 (in -> f) and conv 2 (f -> f)
    in = features[s];
  }
  for (std::size_t s = 0; s + 1 < features.size(); ++s) {
    const double v = stage_voxels[s], f = features[s];
    flops += 2 * features[s + 1] * f * v;   // transposed conv, kernel = stride 2
    flops += 2 * 27 * (2 * f + f) * f * v;  // conv (2f -> f) then (f -> f)
  }
  return flops + 2 * features[0] * 3 * stage_voxels[0];  // 1x1 head, 3 outputs
}

// One 1x1x64^3 tile through the reference network: module forward (0), fused forward (1), fused
// forward in bfloat16 (2), module forward under bf16 autocast (3), fused forward with every
// convolution direct (4: Winograd off). nnU-Net's figure for the same forward is
// ../shared/peers/run train_step's infer_fwd_1x64cube.
void BM_ReferenceTile64(benchmark::State& state) {
  at::set_num_threads(kThreads);
  struct WinogradSwitch {
    explicit WinogradSwitch(bool on) { mlseg::set_winograd_enabled(on); }
    ~WinogradSwitch() { mlseg::set_winograd_enabled(true); }
  } winograd(state.range(0) != 4);
  mlseg::PlainConvUNet network = reference_network();
  network->set_deep_supervision(false);
  const std::int64_t route = state.range(0);
  const mlseg::SegmentationNetwork seam = network;
  const bool fused = route == 1 || route == 2 || route == 4;
  const mlseg::TileForward forward = fused ? mlseg::fused_network_tile_forward(seam) : mlseg::network_tile_forward(seam);
  torch::NoGradGuard no_grad;
  const torch::Tensor tile = torch::randn({1, 1, 64, 64, 64});
  const torch::Tensor input = route == 2 ? tile.to(torch::kBFloat16) : tile;
  const mlseg::Precision precision = route == 3 ? mlseg::Precision::bf16 : mlseg::Precision::fp32;
  const mlseg::BlockReuseScope reuse;  // as in every sliding window (block_reuse.h)
  {
    // One forward first, on every route: parameter casts and Winograd weights are computed once per
    // network (and amortised over a volume's tiles), oneDNN creates its kernels, buffers are mapped.
    const mlseg::AutocastScope autocast(precision, torch::Device(torch::kCPU));
    benchmark::DoNotOptimize(forward(input).data_ptr());
  }
  for (auto _ : state) {
    const mlseg::AutocastScope autocast(precision, torch::Device(torch::kCPU));
    benchmark::DoNotOptimize(forward(input).data_ptr());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(reference_tile_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(route == 0   ? "module fp32"
                 : route == 1 ? "fused fp32"
                 : route == 2 ? "fused bf16"
                 : route == 3 ? "module bf16 autocast"
                              : "fused fp32, direct convolutions");
}
BENCHMARK(BM_ReferenceTile64)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Arg(4)->Iterations(3)->Repetitions(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// One 3x3x3 stride-1 convolution of the reference network, [1, Cin, n^3] -> Cout, as the fused
// forward runs it: Winograd F(4x4, 3x3) into a reused output (route 1), or oneDNN's direct kernel
// (route 0). Arguments: Cin, Cout, n, route. GFLOP/s counts the direct convolution's multiply-adds.
void BM_WinogradConv(benchmark::State& state) {
  at::set_num_threads(kThreads);
  const std::int64_t in = state.range(0), out = state.range(1), n = state.range(2);
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({1, in, n, n, n}), weight = torch::randn({out, in, 3, 3, 3}) * 0.05, bias = torch::randn({out});
  mlseg::WinogradWeightCache cache;
  mlseg::ReusableBuffer output;
  const mlseg::BlockReuseScope reuse;  // oneDNN's outputs reuse memory too, as in a sliding window
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    const torch::Tensor y = state.range(3) == 1 ? mlseg::inference_conv(x, weight, bias, {1, 1, 1}, {1, 1, 1}, &cache, &output)
                                                : mlseg::inference_conv(x, weight, bias, {1, 1, 1}, {1, 1, 1});
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * 27 * in * out * static_cast<double>(n * n * n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_WinogradConv)
    ->ArgsProduct({{32}, {32}, {64}, {0, 1}})
    ->ArgsProduct({{64}, {32}, {64}, {0, 1}})
    ->ArgsProduct({{64}, {64}, {32}, {0, 1}})
    ->ArgsProduct({{128}, {64}, {32}, {0, 1}})
    ->ArgsProduct({{128}, {128}, {16}, {0, 1}})
    ->ArgsProduct({{256}, {128}, {16}, {0, 1}})
    ->ArgsProduct({{256}, {256}, {8}, {0, 1}})
    ->ArgsProduct({{512}, {256}, {8}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One run each: a run takes minutes on two cores. Arguments: tile batch, fused forward (1) or the
// module's forward (0); the first registration is the default configuration.
BENCHMARK(BM_SlidingWindow160)->Args({1, 1})->Args({2, 1})->Args({1, 0})->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_SlidingWindow160_TTA)->Args({1, 1})->Iterations(1)->Repetitions(3)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_SlidingWindow160_Bf16)->Args({1, 1})->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_SlidingWindow160_Direct)->Args({1, 1})->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_SlidingWindow160_NnUNetLoop)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

// ---- ResEnc M (issue 19) ----
// nnU-Net's ResEnc M topology at a 64^3 patch: 5 stages (32, 64, 128, 256, 320), kernels 3, strides
// [1, 2, 2, 2, 2], BasicBlockD blocks per stage 1, 3, 4, 6, 6, one conv per decoder stage, 1 input,
// 3 sigmoid outputs (bench/resenc/peer_sliding_window.py builds the same network in nnU-Net).
mlseg::SegmentationNetwork resenc_m_network() {
  const std::vector<std::int64_t> k{3, 3, 3}, down{2, 2, 2};
  torch::manual_seed(0);
  mlseg::ResidualEncoderUNet network(mlseg::ResidualEncoderUNetOptions(1, 3)
                                         .dimension(3)
                                         .n_stages(5)
                                         .features_per_stage({32, 64, 128, 256, 320})
                                         .kernel_sizes({k, k, k, k, k})
                                         .strides({{1, 1, 1}, down, down, down, down})
                                         .n_blocks_per_stage({1, 3, 4, 6, 6})
                                         .n_conv_per_stage_decoder({1, 1, 1, 1}));
  {
    torch::NoGradGuard no_grad;  // blocks start as their skips; give the last norms weight
    for (auto& item : network->named_parameters()) {
      if (item.key().find("conv2.norm.weight") != std::string::npos) item.value().fill_(1.0);
    }
  }
  network->eval();
  return network;
}

// One 1x1x64^3 tile: module forward (0) or fused forward (1; not offered to sliding windows, as it
// measured slower for this network: see ResidualEncoderUNetImpl::has_fused_forward).
void BM_ForwardResEncM(benchmark::State& state) {
  at::set_num_threads(kThreads);
  const mlseg::SegmentationNetwork network = resenc_m_network();
  network->set_deep_supervision(false);
  const mlseg::TileForward forward = state.range(0) ? mlseg::TileForward([network](const torch::Tensor& tiles) {
    return network->fused_forward(tiles);
  })
                                                    : mlseg::network_tile_forward(network);
  torch::NoGradGuard no_grad;
  const torch::Tensor tile = torch::randn({1, 1, 64, 64, 64});
  for (auto _ : state) benchmark::DoNotOptimize(forward(tile).data_ptr<float>());
}
BENCHMARK(BM_ForwardResEncM)->Arg(0)->Arg(1)->Iterations(3)->Repetitions(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The 1x160^3 volume, 64 tiles of 64^3, step 0.5, through ResEnc M (the module's forward: ResEnc
// offers no fused forward). nnU-Net: bench/resenc/peer_sliding_window.py.
void BM_SlidingWindow160_ResEncM(benchmark::State& state) {
  at::set_num_threads(kThreads);
  const mlseg::SegmentationNetwork network = resenc_m_network();
  torch::manual_seed(1);
  const torch::Tensor image = torch::randn({1, 160, 160, 160});
  mlseg::SlidingWindowOptions options({64, 64, 64});
  options.step_size(0.5);
  for (auto _ : state) {
    const torch::Tensor logits = mlseg::sliding_window_logits(std::vector<mlseg::SegmentationNetwork>{network}, image, options);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  state.counters["tiles"] = 64;
}
BENCHMARK(BM_SlidingWindow160_ResEncM)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
