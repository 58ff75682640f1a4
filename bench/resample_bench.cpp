// Benchmarks of resampling (preprocess): one BraTS case from 1 mm to 0.8 mm and 1.25 mm, 2 threads.
// nnU-Net v2 on one thread (resample_data_or_seg_to_shape): images 5.57 s to 0.8 mm, 1.86 s to
// 1.25 mm; labels 2.26 s and 0.67 s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/preprocessing/resample.h"

namespace {

constexpr int kBenchThreads = 2;

struct BratsCase {
  mlseg::Image image;  // 2 channels, 155 x 240 x 240 at 1 mm
  mlseg::CodeVolume labels;
};

std::filesystem::path data_dir() {
  if (const char* env = std::getenv("MLSEG_DATA")) return env;
  return MLSEG_SHARED_DATA_DIR;
}

// BRATS_0003, read once; nullptr when the shared data is absent.
const BratsCase* brats_case() {
  static const std::unique_ptr<BratsCase> loaded = []() -> std::unique_ptr<BratsCase> {
    const auto root = data_dir() / "Dataset001_BraTS2015";
    if (!std::filesystem::exists(root)) return nullptr;
    const mlseg::Dataset dataset = mlseg::load_dataset(root);
    const auto found = std::find_if(dataset.training.begin(), dataset.training.end(),
                                    [](const mlseg::CaseFiles& files) { return files.case_id == "BRATS_0003"; });
    if (found == dataset.training.end()) return nullptr;
    auto loaded_case = std::make_unique<BratsCase>();
    loaded_case->image = mlseg::read_case_images(dataset, *found);
    loaded_case->labels = mlseg::read_case_labels(dataset, *found).code;
    return loaded_case;
  }();
  return loaded.get();
}

std::array<std::int64_t, 3> target_shape(const std::array<std::int64_t, 3>& shape, double spacing_mm) {
  return mlseg::resampled_shape(shape, {1, 1, 1}, {spacing_mm, spacing_mm, spacing_mm});
}

void resample_brats_image(benchmark::State& state, double spacing_mm) {
  const BratsCase* brats = brats_case();
  if (!brats) {
    state.SkipWithError("shared data missing (Dataset001_BraTS2015/BRATS_0003)");
    return;
  }
  mlseg::ResampleOptions options;
  options.image_interpolation = mlseg::ImageInterpolation::cubic;
  options.threads = kBenchThreads;
  const auto shape = target_shape(brats->image.shape_zyx(), spacing_mm);
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::resample_image(brats->image.data, shape, -1, options).data_ptr());
}

void resample_brats_labels(benchmark::State& state, double spacing_mm, mlseg::LabelResampling mode) {
  const BratsCase* brats = brats_case();
  if (!brats) {
    state.SkipWithError("shared data missing (Dataset001_BraTS2015/BRATS_0003)");
    return;
  }
  const auto shape = target_shape(brats->labels.shape_zyx(), spacing_mm);
  for (auto _ : state) {
    benchmark::DoNotOptimize(mlseg::resample_codes(brats->labels, shape, -1, mode, kBenchThreads).words.data_ptr());
  }
}

void BM_ResampleBratsImage_To08mm(benchmark::State& state) { resample_brats_image(state, 0.8); }
BENCHMARK(BM_ResampleBratsImage_To08mm)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_ResampleBratsImage_To125mm(benchmark::State& state) { resample_brats_image(state, 1.25); }
BENCHMARK(BM_ResampleBratsImage_To125mm)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ResampleBratsLabels_To08mm(benchmark::State& state) {
  resample_brats_labels(state, 0.8, mlseg::LabelResampling::per_channel_bit);
}
BENCHMARK(BM_ResampleBratsLabels_To08mm)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_ResampleBratsLabels_To125mm(benchmark::State& state) {
  resample_brats_labels(state, 1.25, mlseg::LabelResampling::per_channel_bit);
}
BENCHMARK(BM_ResampleBratsLabels_To125mm)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_ResampleBratsLabelsArgmax_To08mm(benchmark::State& state) {
  resample_brats_labels(state, 0.8, mlseg::LabelResampling::most_likely_combination);
}
BENCHMARK(BM_ResampleBratsLabelsArgmax_To08mm)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
