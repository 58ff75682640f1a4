// How close the fp32 inference forward runs to what this CPU can do (issue 23).
//   ./build/bench/mlseg_bench --benchmark_filter='Fp32Peak|ReferenceTile64'
// BM_Fp32PeakFma: the CPU's own fp32 multiply-add throughput on 2 threads (independent FMA chains
// in the widest vector registers the CPU has); no convolution can run faster than this.
// BM_Fp32PeakSgemm: a large square matrix product through LibTorch's BLAS (at::mm).
// BM_Fp32PeakConv: the reference network's costliest layer alone (32 -> 32 channels, 3^3, one
// 64^3 tile) through oneDNN, as the fused forward runs it.
// Each reports GFLOP/s (one multiply-add = 2 FLOP); BM_ReferenceTile64 reports the same for the
// whole forward, so the ratios say how much of the machine the forward already uses.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "mlseg/nn/inference_kernels.h"

namespace {

constexpr int kThreads = 2;
constexpr std::int64_t kFmaIterations = 50'000'000;

#if defined(__x86_64__)
// 12 independent accumulators hide the FMA latency (4 cycles, 2 pipes on current x86 cores).
__attribute__((target("avx512f"))) double fma_chains_avx512(std::int64_t iterations) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (std::int64_t n = 0; n < iterations; ++n) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  benchmark::DoNotOptimize(sum);
  return 12.0 * 16.0 * 2.0 * static_cast<double>(iterations);
}

__attribute__((target("avx2,fma"))) double fma_chains_avx2(std::int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::int64_t n = 0; n < iterations; ++n) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  benchmark::DoNotOptimize(sum);
  return 12.0 * 8.0 * 2.0 * static_cast<double>(iterations);
}
#endif

void BM_Fp32PeakFma(benchmark::State& state) {
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !__builtin_cpu_supports("fma")) {
    state.SkipWithError("this CPU has neither AVX-512F nor FMA");
    return;
  }
  double flops = 0;
  for (auto _ : state) {
    std::vector<double> done(kThreads, 0.0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&done, t, avx512] {
        done[t] = avx512 ? fma_chains_avx512(kFmaIterations) : fma_chains_avx2(kFmaIterations);
      });
    }
    for (auto& thread : threads) thread.join();
    for (const double d : done) flops += d;
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  state.SetLabel(avx512 ? "avx512 fma, 2 threads" : "avx2 fma, 2 threads");
#else
  state.SkipWithError("x86-64 only");
#endif
}
BENCHMARK(BM_Fp32PeakFma)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Fp32PeakSgemm(benchmark::State& state) {
  at::set_num_threads(kThreads);
  const std::int64_t n = state.range(0);
  torch::manual_seed(0);
  const torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
  torch::Tensor c = torch::empty({n, n});
  for (auto _ : state) {
    at::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Fp32PeakSgemm)->Arg(2048)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Fp32PeakConv(benchmark::State& state) {
  at::set_num_threads(kThreads);
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const std::int64_t channels = 32, size = 64;
  const torch::Tensor x = torch::randn({1, channels, size, size, size});
  const torch::Tensor weight = torch::randn({channels, channels, 3, 3, 3}) * 0.05;
  const torch::Tensor bias = torch::zeros({channels});
  for (auto _ : state) {
    benchmark::DoNotOptimize(mlseg::inference_conv(x, weight, bias, {1, 1, 1}, {1, 1, 1}).data_ptr<float>());
  }
  const double flops = 2.0 * 27 * channels * channels * static_cast<double>(size * size * size);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("32->32, 3^3, 64^3, oneDNN");
}
BENCHMARK(BM_Fp32PeakConv)->Iterations(5)->Repetitions(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
