// Benchmarks of issue 3 (analyze).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>

#include "mlseg/analysis/analyze.h"
#include "mlseg/analysis/combination_histogram.h"

namespace {

// A 256^3 uint16 volume with 10 bit-channels: seeded random spheres, channel c sets bit c.
// (nnU-Net-side baseline on this machine: np.unique(return_counts=True) 0.137 s, np.bincount 0.033 s.)
std::vector<std::uint16_t> ten_bit_volume() {
  const int n = 256;
  std::vector<std::uint16_t> volume(static_cast<std::size_t>(n) * n * n, 0);
  std::uint64_t state = 42;
  auto uniform = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / 9007199254740992.0;
  };
  for (int c = 0; c < 10; ++c) {
    for (int blob = 0; blob < 3; ++blob) {
      const double cz = uniform() * n, cy = uniform() * n, cx = uniform() * n, r = 10 + uniform() * 50;
      for (int z = std::max(0, int(cz - r)); z < std::min(n, int(cz + r) + 1); ++z) {
        for (int y = std::max(0, int(cy - r)); y < std::min(n, int(cy + r) + 1); ++y) {
          for (int x = std::max(0, int(cx - r)); x < std::min(n, int(cx + r) + 1); ++x) {
            const double d = (z - cz) * (z - cz) + (y - cy) * (y - cy) + (x - cx) * (x - cx);
            if (d <= r * r) volume[(static_cast<std::size_t>(z) * n + y) * n + x] |= static_cast<std::uint16_t>(1u << c);
          }
        }
      }
    }
  }
  return volume;
}

void BM_CombinationHistogram10bit256(benchmark::State& state) {
  static const std::vector<std::uint16_t> volume = ten_bit_volume();
  std::vector<std::int64_t> table(65536);
  for (auto _ : state) {
    std::fill(table.begin(), table.end(), 0);
    mlseg::count_codes_dense16(volume.data(), static_cast<std::int64_t>(volume.size()), table.data());
    benchmark::DoNotOptimize(table.data());
  }
  std::int64_t distinct = 0;
  for (auto count : table) distinct += count > 0;
  state.counters["combinations"] = static_cast<double>(distinct);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(volume.size()));
}
BENCHMARK(BM_CombinationHistogram10bit256)->Unit(benchmark::kMillisecond);

// The same volume through the CodeVolume path analyze uses (tensor in, sorted histogram out).
void BM_CountCombinationsCodeVolume10bit256(benchmark::State& state) {
  static const std::vector<std::uint16_t> volume = ten_bit_volume();
  mlseg::CodeVolume code = mlseg::empty_code_volume({256, 256, 256}, 10);
  std::memcpy(code.words.data_ptr(), volume.data(), volume.size() * sizeof(std::uint16_t));
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::count_combinations(code).voxels.size());
}
BENCHMARK(BM_CountCombinationsCodeVolume10bit256)->Unit(benchmark::kMillisecond);

std::filesystem::path data_dir() {
  if (const char* env = std::getenv("MLSEG_DATA")) return env;
  return MLSEG_SHARED_DATA_DIR;
}

void analyze_benchmark(benchmark::State& state, const char* dataset) {
  const auto root = data_dir() / dataset;
  if (!std::filesystem::exists(root)) {
    state.SkipWithError("shared data missing");
    return;
  }
  mlseg::AnalyzeOptions options;
  options.show_progress = false;
  options.write_files = false;
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::analyze_dataset(root, options).cases.size());
}

// Whole `analyze` (all cores), without writing files.
void BM_AnalyzeHippocampus(benchmark::State& state) { analyze_benchmark(state, "Dataset004_Hippocampus"); }
BENCHMARK(BM_AnalyzeHippocampus)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_AnalyzeBrats(benchmark::State& state) { analyze_benchmark(state, "Dataset001_BraTS2015"); }
BENCHMARK(BM_AnalyzeBrats)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
