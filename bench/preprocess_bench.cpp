// mlseg preprocess on the real datasets (issue #5's workload): the 200-case Hippocampus set and
// the 5-case BraTS set, 3d_fullres, 2 threads, in-process (files read and written). Peak memory
// is measured on the CLI: /usr/bin/time -v ./build/mlseg preprocess DATASET -c 3d_fullres.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "mlseg/planning/planner.h"
#include "mlseg/preprocessing/preprocess.h"

namespace {

namespace fs = std::filesystem;

void preprocess_real_dataset(benchmark::State& state, const char* name) {
  const fs::path dataset = fs::path(MLSEG_SHARED_DATA_DIR) / name;
  if (!fs::exists(dataset / "dataset.json")) {
    state.SkipWithError("../shared/data is not available");
    return;
  }
  const fs::path work = fs::temp_directory_path() / (std::string("mlseg_bench_preprocess_") + name);
  fs::remove_all(work);
  mlseg::PlanOptions plan;
  plan.work_dir = work.string();
  plan.show_progress = false;
  mlseg::plan_dataset(dataset, plan);  // analyze + plan, not timed
  mlseg::PreprocessOptions options;
  options.work_dir = work.string();
  options.configurations = {"3d_fullres"};
  options.threads = 2;
  options.overwrite = true;
  options.show_progress = false;
  int cases = 0;
  for (auto _ : state) {
    const auto run = mlseg::preprocess_dataset(dataset, options);
    if (!run.ok()) state.SkipWithError("preprocess failed");
    cases = run.configurations[0].preprocessed;
  }
  state.counters["cases"] = cases;
  fs::remove_all(work);
}

void BM_PreprocessHippocampus(benchmark::State& state) { preprocess_real_dataset(state, "Dataset004_Hippocampus"); }
void BM_PreprocessBrats(benchmark::State& state) { preprocess_real_dataset(state, "Dataset001_BraTS2015"); }

}  // namespace

BENCHMARK(BM_PreprocessHippocampus)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_PreprocessBrats)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2);
