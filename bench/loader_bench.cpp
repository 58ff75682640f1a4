// Data loading without augmentation: patches cut from a memory-mapped preprocessed store.
//   ./build/bench/mlseg_bench --benchmark_filter='LoaderThroughput|CutPatch128'
// Workload: 4 synthetic 160^3 cases (1 image channel, 2 overlapping channels, uint8 codes),
// written to a temp folder at first use; batches of 2 patches of 128^3 (nnU-Net's sampling:
// 1 of 2 forced onto foreground).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "mlseg/data/batch_loader.h"
#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/data/training_batches.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"

namespace {
namespace fs = std::filesystem;

constexpr int kCases = 4;
constexpr std::int64_t kEdge = 160;
constexpr std::int64_t kPatch = 128;

/// A sphere mask of the case grid.
torch::Tensor sphere(double cz, double cy, double cx, double radius) {
  const auto axis = torch::arange(kEdge, torch::kFloat);
  const auto z = (axis - cz).pow(2).view({kEdge, 1, 1});
  const auto y = (axis - cy).pow(2).view({1, kEdge, 1});
  const auto x = (axis - cx).pow(2).view({1, 1, kEdge});
  return (z + y + x) <= radius * radius;
}

struct LoaderWorkload {
  fs::path dir = fs::temp_directory_path() / "mlseg_bench_store_160";

  LoaderWorkload() {
    if (fs::exists(dir / "ready")) return;
    fs::remove_all(dir);
    fs::create_directories(dir);
    mlseg::StoreInfo info;
    info.dataset = "Dataset900_Bench";
    info.configuration = "3d_fullres";
    info.image_channels = {"CT"};
    info.num_image_channels = 1;
    info.channel_names = {"organ", "lesion"};
    info.code_descr = mlseg::npy_descr(torch::kUInt8, true);
    info.label_encoding = "sigmoid";
    info.channels_overlap = true;
    info.spacing_mm = {1, 1, 1};
    info.patch_size = {kPatch, kPatch, kPatch};
    torch::manual_seed(7);
    for (int i = 0; i < kCases; ++i) {
      const std::string id = "case_" + std::to_string(i);
      info.cases.push_back(id);
      const torch::Tensor organ = sphere(80, 80 + 5 * i, 80, 50);
      const torch::Tensor lesion = sphere(60 + 10 * i, 90, 70, 8 + 2 * i);
      const torch::Tensor codes = (organ.to(torch::kUInt8) | (lesion.to(torch::kUInt8) * 2)).unsqueeze(0);
      mlseg::CaseProperties p;
      p.case_id = id;
      p.original_shape_zyx = p.crop_end = p.shape_after_crop = p.shape_after_resample = {kEdge, kEdge, kEdge};
      p.spacing_after_crop_mm = p.spacing_mm = {1, 1, 1};
      std::vector<torch::Tensor> rows;
      std::int64_t offset = 0;
      for (int c = 0; c < 2; ++c) {
        const torch::Tensor all = torch::nonzero(c == 0 ? organ : lesion);
        const std::int64_t n = all.size(0);
        // nnU-Net keeps max(min(10000, n), ceil(0.01 n)) voxels; evenly spaced here.
        const std::int64_t keep = std::min<std::int64_t>(n, std::max<std::int64_t>(10000, (n + 99) / 100));
        rows.push_back(all.index_select(0, torch::linspace(0, n - 1, keep).to(torch::kLong)).to(torch::kInt));
        mlseg::LocationGroup group;
        group.kind = "channel";
        group.name = info.channel_names[c];
        group.channel = c;
        group.voxels = n;
        group.offset = offset;
        group.count = keep;
        offset += keep;
        p.locations.push_back(group);
        p.channel_voxels.push_back(n);
      }
      p.channel_voxels.push_back(0);
      mlseg::write_npy(mlseg::store_image_file(dir, id), torch::randn({1, kEdge, kEdge, kEdge}));
      mlseg::write_npy(mlseg::store_codes_file(dir, id), codes, true);
      mlseg::write_npy(mlseg::store_locations_file(dir, id), torch::cat(rows));
      mlseg::write_json_file(mlseg::store_properties_file(dir, id), mlseg::case_properties_to_json(p));
    }
    mlseg::write_json_file(dir / mlseg::kStoreFile, mlseg::store_info_to_json(info));
    std::ofstream(dir / "ready") << "ok\n";
  }
};

const LoaderWorkload& workload() {
  static const LoaderWorkload instance;
  return instance;
}

// Batches of 2 x 128^3 patches through BatchLoader with state.range(0) workers.
void BM_LoaderThroughput(benchmark::State& state) {
  const mlseg::PreprocessedStore store(workload().dir);
  const mlseg::PatchSampler sampler(store, mlseg::SamplerOptions(2, {kPatch, kPatch, kPatch}));
  mlseg::BatchLoader loader([&](std::int64_t i) { return mlseg::cut_patch_batch(store, sampler, i); },
                            mlseg::LoaderOptions().workers(static_cast<int>(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(loader.next()->tensors[0].data_ptr());
  state.counters["patches_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * 2), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LoaderThroughput)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same with nnU-Net's default augmentation (initial patch cut, augmented to 128^3): what the
// trainer's loader delivers, with state.range(0) workers.
void BM_LoaderThroughputAugmented(benchmark::State& state) {
  const mlseg::PreprocessedStore store(workload().dir);
  const mlseg::TrainingBatchOptions options = mlseg::TrainingBatchOptions().patch_size_zyx({kPatch, kPatch, kPatch});
  const mlseg::PatchSampler sampler(
      store, mlseg::SamplerOptions(2, mlseg::training_cut_size(options)).final_patch_size_zyx({kPatch, kPatch, kPatch}));
  mlseg::BatchLoader loader([&](std::int64_t i) { return mlseg::make_training_batch(store, sampler, options, i); },
                            mlseg::LoaderOptions().workers(static_cast<int>(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(loader.next()->tensors[0].data_ptr());
  state.counters["patches_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * 2), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LoaderThroughputAugmented)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// One 128^3 patch (image + codes) at sampled positions of one case, on the calling thread.
void BM_CutPatch128(benchmark::State& state) {
  const mlseg::PreprocessedStore store(workload().dir);
  const mlseg::PatchSampler sampler(store, mlseg::SamplerOptions(2, {kPatch, kPatch, kPatch}));
  std::int64_t batch = 0;
  for (auto _ : state) {
    const mlseg::PatchDraw draw = sampler.sample(batch++, 0);
    benchmark::DoNotOptimize(store.cut_patch(draw.case_index, draw.begin_zyx, {kPatch, kPatch, kPatch}).image.data_ptr());
  }
  state.counters["patches_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(state.iterations() * kPatch * kPatch * kPatch * 5);  // float32 image + uint8 codes
}
BENCHMARK(BM_CutPatch128)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
