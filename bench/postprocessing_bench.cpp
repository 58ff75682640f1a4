// Issue #24 part 3's workload: connected components (26-connectivity) of a 512 x 512 x 400 volume
// with 16 channels, each channel a mask of its own (the cores go to z-slabs of one channel).
// Per channel: a few dozen axis-aligned ellipsoids of varied size and proportions (some overlap and
// merge) plus thousands of 1-27 voxel noise blobs; deterministic (SplitMix64), made once outside
// the timed loop.
//   ./build/bench/mlseg_bench --benchmark_filter=ConnectedComponents
// The scipy peer (bench/postprocessing/scipy_label.py) times the same masks:
//   MLSEG_BENCH_WRITE_CC_NPY=/tmp/mlseg_cc.npy ./build/bench/mlseg_bench --benchmark_filter=ConnectedComponents
// writes them ([16, 400, 512, 512] bool) and mlseg's component count and largest size per channel
// (/tmp/mlseg_cc.npy.mlseg.json), then
//   /usr/bin/python3 bench/postprocessing/scipy_label.py /tmp/mlseg_cc.npy
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "mlseg/core/parallel.h"
#include "mlseg/core/random.h"
#include "mlseg/data/connected_components.h"
#include "mlseg/io/npy.h"

namespace {

constexpr std::int64_t kChannels = 16;
constexpr std::int64_t kDepth = 400, kHeight = 512, kWidth = 512;
constexpr std::int64_t kVoxelsPerChannel = kDepth * kHeight * kWidth;
constexpr int kEllipsoidsPerChannel = 36;
constexpr double kMinRadius = 6.0, kMaxRadius = 64.0;          // voxels, before the axis scales
constexpr double kMinAxisScale = 0.6, kMaxAxisScale = 1.5;      // per axis: ellipsoids, not balls
constexpr int kNoiseBlobsPerChannel = 4000;
constexpr std::uint64_t kNoiseBlobMaxSide = 3;                  // cubes of 1-3 voxels a side
constexpr std::uint64_t kSeed = 24;                             // the number
constexpr const char* kWriteNpyVariable = "MLSEG_BENCH_WRITE_CC_NPY";

void add_ellipsoid(bool* channel, mlseg::SplitMix64& random) {
  const double centre[3] = {random.uniform(0, kDepth), random.uniform(0, kHeight), random.uniform(0, kWidth)};
  const double radius = random.uniform(kMinRadius, kMaxRadius);
  const double radii[3] = {radius * random.uniform(kMinAxisScale, kMaxAxisScale), radius * random.uniform(kMinAxisScale, kMaxAxisScale),
                           radius * random.uniform(kMinAxisScale, kMaxAxisScale)};
  const std::int64_t z_begin = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(centre[0] - radii[0])));
  const std::int64_t z_end = std::min<std::int64_t>(kDepth, static_cast<std::int64_t>(std::floor(centre[0] + radii[0])) + 1);
  for (std::int64_t z = z_begin; z < z_end; ++z) {
    const double fz = (z - centre[0]) / radii[0];
    for (std::int64_t y = 0; y < kHeight; ++y) {
      const double fy = (y - centre[1]) / radii[1];
      const double left = 1.0 - fz * fz - fy * fy;
      if (left < 0.0) continue;
      const double half_width = radii[2] * std::sqrt(left);
      const std::int64_t x_begin = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(centre[2] - half_width)));
      const std::int64_t x_end = std::min<std::int64_t>(kWidth, static_cast<std::int64_t>(std::floor(centre[2] + half_width)) + 1);
      if (x_begin < x_end) std::fill(channel + (z * kHeight + y) * kWidth + x_begin, channel + (z * kHeight + y) * kWidth + x_end, true);
    }
  }
}

void add_noise_blob(bool* channel, mlseg::SplitMix64& random) {
  const std::int64_t side = 1 + static_cast<std::int64_t>(random.below(kNoiseBlobMaxSide));
  const std::int64_t z0 = static_cast<std::int64_t>(random.below(kDepth - side + 1));
  const std::int64_t y0 = static_cast<std::int64_t>(random.below(kHeight - side + 1));
  const std::int64_t x0 = static_cast<std::int64_t>(random.below(kWidth - side + 1));
  for (std::int64_t z = z0; z < z0 + side; ++z) {
    for (std::int64_t y = y0; y < y0 + side; ++y) std::fill_n(channel + (z * kHeight + y) * kWidth + x0, side, true);
  }
}

struct ComponentsWorkload {
  torch::Tensor masks;  // bool [16, 400, 512, 512]

  ComponentsWorkload() {
    masks = torch::zeros({kChannels, kDepth, kHeight, kWidth}, torch::kBool);
    bool* data = masks.data_ptr<bool>();
    mlseg::parallel_for(kChannels, 0, [&](std::size_t c) {
      mlseg::SplitMix64 random(kSeed * 1000 + c);
      bool* channel = data + static_cast<std::int64_t>(c) * kVoxelsPerChannel;
      for (int e = 0; e < kEllipsoidsPerChannel; ++e) add_ellipsoid(channel, random);
      for (int b = 0; b < kNoiseBlobsPerChannel; ++b) add_noise_blob(channel, random);
    });
    if (const char* path = std::getenv(kWriteNpyVariable)) write_for_peer(path);
  }

  // The masks for the scipy peer, and what mlseg finds in them for it to compare.
  void write_for_peer(const std::string& path) const {
    mlseg::write_npy(path, masks);
    nlohmann::json summary{{"shape", {kChannels, kDepth, kHeight, kWidth}}, {"num_components", nlohmann::json::array()},
                           {"largest_size", nlohmann::json::array()}, {"foreground_voxels", nlohmann::json::array()}};
    for (std::int64_t c = 0; c < kChannels; ++c) {
      const mlseg::ComponentLabels labels = mlseg::label_components(masks[c]);
      const auto largest = std::max_element(labels.sizes.begin(), labels.sizes.end());
      summary["num_components"].push_back(labels.sizes.size());
      summary["largest_size"].push_back(largest == labels.sizes.end() ? 0 : *largest);
      summary["foreground_voxels"].push_back(masks[c].count_nonzero().item<std::int64_t>());
    }
    std::ofstream(path + ".mlseg.json") << summary.dump(1) << "\n";
    std::cerr << "wrote " << path << " and " << path << ".mlseg.json\n";
  }
};

const ComponentsWorkload& workload() {
  static const ComponentsWorkload instance;
  return instance;
}

void report_voxel_rate(benchmark::State& state) {
  state.counters["voxels_per_second"] =
      benchmark::Counter(static_cast<double>(kChannels * kVoxelsPerChannel), benchmark::Counter::kIsIterationInvariantRate);
}

// What a postprocessing step runs: keep_largest_component on each of the 16 channels.
void BM_ConnectedComponents512x512x400x16(benchmark::State& state) {
  const torch::Tensor& masks = workload().masks;
  for (auto _ : state) {
    for (std::int64_t c = 0; c < kChannels; ++c) {
      const torch::Tensor largest = mlseg::keep_largest_component(masks[c]);
      benchmark::DoNotOptimize(largest.data_ptr());
    }
  }
  report_voxel_rate(state);
}
BENCHMARK(BM_ConnectedComponents512x512x400x16)->Unit(benchmark::kMillisecond)->UseRealTime();

// Labelling alone, the int32 label volume written (scipy.ndimage.label's output).
void BM_ConnectedComponentsLabelsOnly512x512x400x16(benchmark::State& state) {
  const torch::Tensor& masks = workload().masks;
  for (auto _ : state) {
    for (std::int64_t c = 0; c < kChannels; ++c) {
      const mlseg::ComponentLabels labels = mlseg::label_components(masks[c]);
      benchmark::DoNotOptimize(labels.labels.data_ptr());
    }
  }
  report_voxel_rate(state);
}
BENCHMARK(BM_ConnectedComponentsLabelsOnly512x512x400x16)->Unit(benchmark::kMillisecond)->UseRealTime();

// For comparison: a fresh zeroed volume of the output type (bool, int32) per channel as
// torch::zeros makes it, on 4 KiB pages; most of it is first-touch page faults. The labelling's
// outputs are advised onto huge pages (data/connected_components.cpp), which is why
// both benchmarks above can take less than this.
void BM_ConnectedComponentsTorchZeros512x512x400x16(benchmark::State& state, torch::ScalarType dtype) {
  for (auto _ : state) {
    for (std::int64_t c = 0; c < kChannels; ++c) {
      const torch::Tensor out = torch::zeros({kDepth, kHeight, kWidth}, torch::TensorOptions().dtype(dtype));
      benchmark::DoNotOptimize(out.data_ptr());
    }
  }
  report_voxel_rate(state);
}
BENCHMARK_CAPTURE(BM_ConnectedComponentsTorchZeros512x512x400x16, bool, torch::kBool)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConnectedComponentsTorchZeros512x512x400x16, int32, torch::kInt32)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
