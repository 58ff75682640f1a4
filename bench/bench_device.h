// Where the training and sliding-window benchmarks run: MLSEG_BENCH_DEVICE=cuda (or cuda:N) times
// them on a GPU (scripts/gpu-check.sh sets it); unset or cpu keeps the CPU figures' setup.
#pragma once

#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include <cstdlib>
#include <string>

namespace mlseg_bench {

inline torch::Device bench_device() {
  const char* name = std::getenv("MLSEG_BENCH_DEVICE");
  return torch::Device(name != nullptr && *name != '\0' ? std::string(name) : std::string("cpu"));
}

/// False (and the benchmark skipped with the reason) when `device` is CUDA and there is none.
inline bool device_usable(benchmark::State& state, const torch::Device& device) {
  if (!device.is_cuda() || torch::cuda::is_available()) return true;
  state.SkipWithError("MLSEG_BENCH_DEVICE asks for CUDA, but this LibTorch sees no CUDA device");
  return false;
}

/// Waits for the device's queued kernels, so that a timed iteration ends when its work does.
inline void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

}  // namespace mlseg_bench
