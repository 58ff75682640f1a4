// Benchmarks of the training augmentation (one sample, one thread).
// Workload: a 128^3 patch (1 image channel) from a synthetic 160^3 case. The sampler's cut of the
// initial patch (205^3 around the centre, padded with 0 / background outside the case as nnU-Net
// pads) is made once; each iteration augments it with another seed, nnU-Net's default
// probabilities. The time is the mean per patch over 256 patches.
// nnU-Net v2 (batchgeneratorsv2) on this machine: 0.14-0.16 s per patch with 3 labels,
// 0.16-0.18 s with 3 regions, 0.32-0.34 s with rotation and scaling forced.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <set>

#include "mlseg/core/random.h"
#include "mlseg/data/augmentation.h"
#include "mlseg/data/intensity_transforms.h"
#include "mlseg/data/mirror.h"

namespace {

using Shape = std::array<std::int64_t, 3>;
constexpr std::int64_t kCase = 160;
const Shape kPatch{128, 128, 128};

struct Blob {
  double z, y, x, radius;
};

// Blobs of `channels` channels, `per_channel` each, seeded.
std::vector<std::vector<Blob>> random_blobs(int channels, int per_channel, std::uint64_t seed) {
  mlseg::SplitMix64 rng(seed);
  std::vector<std::vector<Blob>> blobs(static_cast<std::size_t>(channels));
  for (auto& list : blobs) {
    for (int b = 0; b < per_channel; ++b) {
      list.push_back({rng.uniform(20, kCase - 20), rng.uniform(20, kCase - 20), rng.uniform(20, kCase - 20),
                      rng.uniform(8, 40)});
    }
  }
  return blobs;
}

bool inside(const Blob& blob, std::int64_t z, std::int64_t y, std::int64_t x) {
  const double dz = z - blob.z, dy = y - blob.y, dx = x - blob.x;
  return dz * dz + dy * dy + dx * dx <= blob.radius * blob.radius;
}

struct Sample {
  torch::Tensor image;
  mlseg::CodeVolume codes;
};

// A case with `channels` channels: overlapping blobs (bit c per channel c), or, when
// `exclusive`, a label map (the first channel whose blob covers a voxel wins).
Sample make_initial_patch(int channels, bool exclusive) {
  const auto blobs = random_blobs(channels, exclusive ? 2 : 4, 1234);
  torch::Tensor image = torch::empty({1, kCase, kCase, kCase}, torch::kFloat32);
  mlseg::CodeVolume codes = mlseg::empty_code_volume({kCase, kCase, kCase}, channels);
  torch::Tensor code_values = torch::zeros({1, kCase, kCase, kCase}, torch::kInt64);
  float* pixels = image.data_ptr<float>();
  std::int64_t* values = code_values.data_ptr<std::int64_t>();
  mlseg::SplitMix64 noise(7);
  for (std::int64_t z = 0, i = 0; z < kCase; ++z) {
    for (std::int64_t y = 0; y < kCase; ++y) {
      for (std::int64_t x = 0; x < kCase; ++x, ++i) {
        std::int64_t code = 0;
        for (int c = 0; c < channels; ++c) {
          for (const Blob& blob : blobs[static_cast<std::size_t>(c)]) {
            if (!inside(blob, z, y, x)) continue;
            code |= std::int64_t{1} << c;
            break;
          }
          if (exclusive && code != 0) break;
        }
        values[i] = code;
        pixels[i] = static_cast<float>(0.1 * __builtin_popcountll(static_cast<unsigned long long>(code)) + 0.05 * noise.normal());
      }
    }
  }
  codes.words = code_values.to(codes.words.scalar_type());
  // The sampler's cut: the initial patch around the case centre, padded outside the case.
  const Shape initial = mlseg::initial_patch_size(kPatch);
  std::vector<std::int64_t> pad;
  for (int axis = 2; axis >= 0; --axis) {
    const std::int64_t before = initial[static_cast<std::size_t>(axis)] / 2 - kCase / 2;
    pad.push_back(before);
    pad.push_back(initial[static_cast<std::size_t>(axis)] - kCase - before);
  }
  Sample sample;
  sample.image = torch::constant_pad_nd(image, pad, 0.0).contiguous();
  sample.codes.num_channels = channels;
  sample.codes.words = torch::constant_pad_nd(codes.words, pad, 0).contiguous();
  return sample;
}

std::size_t distinct_codes(const mlseg::CodeVolume& codes) {
  const torch::Tensor flat = codes.words.to(torch::kInt64).flatten();
  std::set<std::int64_t> seen(flat.data_ptr<std::int64_t>(), flat.data_ptr<std::int64_t>() + flat.numel());
  return seen.size();
}

void augment_benchmark(benchmark::State& state, const Sample& sample, const mlseg::AugmentationOptions& options) {
  std::uint64_t seed = 0;
  for (auto _ : state) {
    auto augmented = mlseg::augment_sample(sample.image, sample.codes, kPatch, options, seed++);
    benchmark::DoNotOptimize(augmented.image.data_ptr());
  }
  state.counters["distinct_codes"] = static_cast<double>(distinct_codes(sample.codes));
}

void BM_AugmentPatch128_Labels3(benchmark::State& state) {
  static const Sample sample = make_initial_patch(3, true);
  augment_benchmark(state, sample, mlseg::AugmentationOptions());
}
BENCHMARK(BM_AugmentPatch128_Labels3)->Unit(benchmark::kMillisecond)->Iterations(256);

void BM_AugmentPatch128_Bitmask10(benchmark::State& state) {
  static const Sample sample = make_initial_patch(10, false);
  augment_benchmark(state, sample, mlseg::AugmentationOptions());
}
BENCHMARK(BM_AugmentPatch128_Bitmask10)->Unit(benchmark::kMillisecond)->Iterations(256);

// The spatial transform alone, rotation and scaling forced (3-label sample).
void BM_SpatialForced128(benchmark::State& state) {
  static const Sample sample = make_initial_patch(3, true);
  mlseg::AugmentationOptions options = mlseg::AugmentationOptions::none();
  options.spatial().rotation_probability(1.0).scaling_probability(1.0);
  augment_benchmark(state, sample, options);
}
BENCHMARK(BM_SpatialForced128)->Unit(benchmark::kMillisecond)->Iterations(256);

// The two kinds of draw on their own: scaling without rotation takes the separable path,
// rotation the general per-voxel kernel (3-label sample, everything else off).
void spatial_draw_benchmark(benchmark::State& state, double rotation_probability, double scaling_probability) {
  static const Sample sample = make_initial_patch(3, true);
  mlseg::AugmentationOptions options = mlseg::AugmentationOptions::none();
  options.spatial().rotation_probability(rotation_probability).scaling_probability(scaling_probability);
  augment_benchmark(state, sample, options);
}
void BM_SpatialScalingOnly128(benchmark::State& state) { spatial_draw_benchmark(state, 0.0, 1.0); }
BENCHMARK(BM_SpatialScalingOnly128)->Unit(benchmark::kMillisecond)->Iterations(128);
void BM_SpatialRotationOnly128(benchmark::State& state) { spatial_draw_benchmark(state, 1.0, 0.0); }
BENCHMARK(BM_SpatialRotationOnly128)->Unit(benchmark::kMillisecond)->Iterations(128);

// Per-transform cost on the 128^3 patch (in place, each transform forced, one channel): where
// the time of the pipeline above goes. Multiply by the transform's firing rate for its share.
torch::Tensor patch128() {
  static const Sample sample = make_initial_patch(3, true);
  mlseg::AugmentationOptions options = mlseg::AugmentationOptions::none();
  return mlseg::augment_sample(sample.image, sample.codes, kPatch, options, std::uint64_t{0}).image;
}

void BM_Transform128_CentreCrop(benchmark::State& state) {
  static const Sample sample = make_initial_patch(3, true);
  augment_benchmark(state, sample, mlseg::AugmentationOptions::none());
}
BENCHMARK(BM_Transform128_CentreCrop)->Unit(benchmark::kMillisecond)->Iterations(64);

void BM_Transform128_Noise(benchmark::State& state) {
  torch::Tensor image = patch128();
  mlseg::SplitMix64 rng(1);
  for (auto _ : state) mlseg::add_gaussian_noise(image, 0.05, rng);
}
BENCHMARK(BM_Transform128_Noise)->Unit(benchmark::kMillisecond)->Iterations(32);

void BM_Transform128_Blur(benchmark::State& state) {
  torch::Tensor image = patch128();
  for (auto _ : state) mlseg::gaussian_blur_channel(image, 0, {0.75, 0.75, 0.75});
}
BENCHMARK(BM_Transform128_Blur)->Unit(benchmark::kMillisecond)->Iterations(32);

void BM_Transform128_Contrast(benchmark::State& state) {
  torch::Tensor image = patch128();
  for (auto _ : state) mlseg::adjust_channel_contrast(image, 0, 1.1, true);
}
BENCHMARK(BM_Transform128_Contrast)->Unit(benchmark::kMillisecond)->Iterations(32);

void BM_Transform128_LowResolution(benchmark::State& state) {
  torch::Tensor image = patch128();
  for (auto _ : state) mlseg::simulate_low_resolution_channel(image, 0, 0.75, {false, false, false});
}
BENCHMARK(BM_Transform128_LowResolution)->Unit(benchmark::kMillisecond)->Iterations(32);

void BM_Transform128_Gamma(benchmark::State& state) {
  torch::Tensor image = patch128();
  for (auto _ : state) mlseg::gamma_channel(image, 0, 1.3, false, true);
}
BENCHMARK(BM_Transform128_Gamma)->Unit(benchmark::kMillisecond)->Iterations(32);

void BM_Transform128_MirrorXYZ(benchmark::State& state) {
  static const Sample sample = make_initial_patch(3, true);
  auto augmented = mlseg::augment_sample(sample.image, sample.codes, kPatch, mlseg::AugmentationOptions::none(), 0);
  for (auto _ : state) {
    mlseg::mirror_in_place(augmented.image, {true, true, true});
    mlseg::mirror_in_place(augmented.codes, {true, true, true});
  }
}
BENCHMARK(BM_Transform128_MirrorXYZ)->Unit(benchmark::kMillisecond)->Iterations(32);

// The same forced draw on small patches whose input stays in the L2 cache (32^3: a 52^3 input,
// 0.6 MB with its codes), labels in large blocks: the kernel's own cost per output voxel, with
// memory out of the way. Compare ns_per_voxel with BM_SpatialForced128's time / 128^3.
void BM_SpatialForcedInCache(benchmark::State& state) {
  const std::int64_t size = state.range(0);
  const Shape patch{size, size, size};
  const Shape initial = mlseg::initial_patch_size(patch);
  const torch::Tensor image = torch::rand({1, initial[0], initial[1], initial[2]});
  mlseg::CodeVolume codes = mlseg::empty_code_volume(initial, 3);
  const torch::Tensor z = torch::arange(initial[0]).view({1, -1, 1, 1});
  const torch::Tensor y = torch::arange(initial[1]).view({1, 1, -1, 1});
  const torch::Tensor x = torch::arange(initial[2]).view({1, 1, 1, -1});
  codes.words.copy_(((z / 32 + y / 32 + x / 32) % 4).to(codes.words.scalar_type()));
  mlseg::AugmentationOptions options = mlseg::AugmentationOptions::none();
  options.spatial().rotation_probability(1.0).scaling_probability(1.0);
  std::uint64_t seed = 0;
  for (auto _ : state) {
    auto augmented = mlseg::augment_sample(image, codes, patch, options, seed++);
    benchmark::DoNotOptimize(augmented.image.data_ptr());
  }
  state.counters["ns_per_voxel"] = benchmark::Counter(static_cast<double>(state.iterations() * size * size * size),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_SpatialForcedInCache)->Arg(32)->Unit(benchmark::kMicrosecond);

}  // namespace
