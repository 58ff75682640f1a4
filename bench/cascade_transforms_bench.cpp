// Benchmarks of the cascade's prior augmentation (data/cascade_transforms.h).
// Workload: a 128^3 mask holding a sphere of radius 30 voxels and a few small blobs (a plausible
// 3d_lowres prediction in a fullres patch), dilated with nnU-Net's largest ball, radius 8 (2,109
// voxels): one thread as in the loader, and all cores.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "mlseg/data/cascade_transforms.h"

namespace {

constexpr std::int64_t kPatch = 128;
constexpr double kLargestRadius = 8.0;

torch::Tensor prior_mask() {
  torch::Tensor mask = torch::zeros({kPatch, kPatch, kPatch}, torch::kBool);
  auto voxels = mask.accessor<bool, 3>();
  const auto paint = [&](double cz, double cy, double cx, double radius) {
    for (std::int64_t z = 0; z < kPatch; ++z) {
      for (std::int64_t y = 0; y < kPatch; ++y) {
        for (std::int64_t x = 0; x < kPatch; ++x) {
          const double dz = z - cz, dy = y - cy, dx = x - cx;
          if (dz * dz + dy * dy + dx * dx <= radius * radius) voxels[z][y][x] = true;
        }
      }
    }
  };
  paint(64, 64, 64, 30);
  paint(20, 100, 30, 4);
  paint(110, 20, 100, 6);
  return mask;
}

void BM_CascadeDilateBall128(benchmark::State& state) {
  const torch::Tensor mask = prior_mask();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::dilate_ball(mask, kLargestRadius, threads));
}
BENCHMARK(BM_CascadeDilateBall128)->Arg(1)->Arg(0)->ArgName("threads")->Unit(benchmark::kMillisecond);

void BM_CascadeCloseBall128(benchmark::State& state) {
  const torch::Tensor mask = prior_mask();
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::close_ball(mask, kLargestRadius));
}
BENCHMARK(BM_CascadeCloseBall128)->Unit(benchmark::kMillisecond);

}  // namespace
