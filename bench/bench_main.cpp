// Benchmarks of the foundation: image read/write, label encoding, verify on real datasets.
// Real-data benchmarks need ../shared/data (or $MLSEG_DATA); they report an error when it is absent.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "mlseg/core/allocator.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/image_io.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/synth/phantom.h"
#include "mlseg/verify/verify.h"

namespace {
namespace fs = std::filesystem;

// The allocator settings every mlseg command runs with (core/allocator.h), so that the workloads
// are timed as users run them; MLSEG_DEFAULT_MALLOC=1 times them with glibc's defaults.
const bool kAllocatorTuned = mlseg::core::tune_allocator();

fs::path data_dir() {
  if (const char* env = std::getenv("MLSEG_DATA")) return env;
  return MLSEG_SHARED_DATA_DIR;
}

bool require(benchmark::State& state, const fs::path& path) {
  if (fs::exists(path)) return true;
  state.SkipWithError(("missing " + path.string()).c_str());
  return false;
}

const fs::path kBratsImage = "Dataset001_BraTS2015/imagesTr/BRATS_0002_0000.nii.gz";
const fs::path kBratsLabel = "Dataset001_BraTS2015/labelsTr/BRATS_0002.nii.gz";

// Read one 240x240x155 float32 .nii.gz (BraTS FLAIR).
void BM_ReadNiftiGzBrats(benchmark::State& state) {
  const fs::path path = data_dir() / kBratsImage;
  if (!require(state, path)) return;
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::read_image(path).data.data_ptr());
  state.SetBytesProcessed(state.iterations() * 240 * 240 * 155 * 4);
}
BENCHMARK(BM_ReadNiftiGzBrats)->Unit(benchmark::kMillisecond);

// Read one float32-stored label map and check it is integral (BraTS label).
void BM_ReadLabelBrats(benchmark::State& state) {
  const fs::path path = data_dir() / kBratsLabel;
  if (!require(state, path)) return;
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::read_label_image(path).data.data_ptr());
}
BENCHMARK(BM_ReadLabelBrats)->Unit(benchmark::kMillisecond);

// Write the BraTS FLAIR volume; arg 1 = gzip (.nii.gz), 0 = uncompressed (.nii).
void BM_WriteNiftiBrats(benchmark::State& state) {
  const fs::path path = data_dir() / kBratsImage;
  if (!require(state, path)) return;
  const mlseg::Image image = mlseg::read_image(path);
  const fs::path out = fs::temp_directory_path() / (state.range(0) ? "mlseg_bench.nii.gz" : "mlseg_bench.nii");
  for (auto _ : state) mlseg::write_image(image, out);
  fs::remove(out);
  state.SetBytesProcessed(state.iterations() * image.data.numel() * 4);
}
BENCHMARK(BM_WriteNiftiBrats)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

// BraTS label map (4 values, 3 nested regions) -> channel code.
void BM_EncodeRegionsBrats(benchmark::State& state) {
  const fs::path root = data_dir() / "Dataset001_BraTS2015";
  if (!require(state, root)) return;
  const mlseg::Dataset dataset = mlseg::load_dataset(root);
  const mlseg::Image label = mlseg::read_label_image(data_dir() / kBratsLabel);
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::encode_label_map(label.data, dataset.labels).words.data_ptr());
  state.SetItemsProcessed(state.iterations() * label.data.numel());
}
BENCHMARK(BM_EncodeRegionsBrats)->Unit(benchmark::kMillisecond);

// verify on the 200-case Hippocampus dataset (all checks, all cores).
void BM_VerifyHippocampus(benchmark::State& state) {
  const fs::path root = data_dir() / "Dataset004_Hippocampus";
  if (!require(state, root)) return;
  mlseg::VerifyOptions options;
  options.show_progress = false;
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::verify_dataset(root, options).problems.size());
}
BENCHMARK(BM_VerifyHippocampus)->Unit(benchmark::kMillisecond)->UseRealTime();

// verify on the 5-case BraTS 2015 subset (2 modalities + regions, 240x240x155).
void BM_VerifyBrats(benchmark::State& state) {
  const fs::path root = data_dir() / "Dataset001_BraTS2015";
  if (!require(state, root)) return;
  mlseg::VerifyOptions options;
  options.show_progress = false;
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::verify_dataset(root, options).problems.size());
}
BENCHMARK(BM_VerifyBrats)->Unit(benchmark::kMillisecond)->UseRealTime();

// One 64x128x128 phantom case with 10 channels, generated in memory.
void BM_SynthPhantomCase(benchmark::State& state) {
  mlseg::PhantomOptions options;
  options.shape_zyx = {64, 128, 128};
  options.num_channels = 10;
  int index = 0;
  for (auto _ : state) benchmark::DoNotOptimize(mlseg::make_phantom_case(index++, options).code.words.data_ptr());
}
BENCHMARK(BM_SynthPhantomCase)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
