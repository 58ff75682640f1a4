#pragma once
// mlseg preprocess: each training case of a raw dataset, for one plans.json configuration,
// transposed, cropped to the nonzero box, normalised, resampled to the target spacing, with
// the rare-combination policy applied and sampling locations drawn, written to the store
// (io/store_layout.h) in WORK/<dataset>/preprocessed/<config>/. nnU-Net's order of operations
// (default_preprocessor.py:55-89).
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/core/image.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/preprocessing/image_steps.h"
#include "mlseg/preprocessing/normalize.h"
#include "mlseg/preprocessing/rare_combinations.h"
#include "mlseg/preprocessing/resample.h"
#include "mlseg/preprocessing/sampling_locations.h"

namespace mlseg {

struct PreprocessOptions {
  std::string work_dir;  ///< empty: $MLSEG_WORK, else ./mlseg_work
  /// -c: configurations of plans.json to preprocess; empty = 3d_fullres (2d for 2D datasets).
  std::vector<std::string> configurations;
  /// --rare-combos: what happens to rare channel combinations (analyze's thresholds).
  RareCombinationPolicy rare_policy = RareCombinationPolicy::keep;
  /// --image-interpolation: cubic (order 3) or linear (order 1). Unset: the configuration's
  /// resampling_fn_data_kwargs.order in plans.json (3 as planned), which prediction reads too; a
  /// value that differs from it is an error, so training and prediction never resample differently.
  std::optional<ImageInterpolation> image_interpolation;
  /// Spacing ratio above which the coarse axis is resampled apart, with nearest (nnU-Net's 3).
  double anisotropy_threshold = kDefaultAnisotropyThreshold;
  LocationOptions locations;
  int threads = 0;         ///< 0 = all cores; cases run in parallel, large cases also split inside
  bool overwrite = false;  ///< --overwrite: redo every case (default: skip cases whose inputs did not change)
  bool show_progress = true;
};

/// Everything one case needs, derived once per configuration from plans.json and labels.json.
struct CasePreprocessingPlan : ImagePreprocessingPlan {
  LabelResampling label_resampling = LabelResampling::per_channel_bit;
  std::vector<std::string> channel_names;
  RareCombinationPlan rare;
  std::vector<CombinationTarget> location_combinations;  ///< rare combinations that survive the policy
  LocationOptions locations;
};

struct PreprocessedCase {
  torch::Tensor image;  ///< float32 [C, Z, Y, X], planned axes
  CodeVolume code;
  torch::Tensor location_rows;  ///< int32 [N, 3]
  CaseProperties properties;    ///< input_fingerprint left empty
};

/// One case in memory (pure: no files). `labels_geometry` is checked against the image's shape.
PreprocessedCase preprocess_case(const std::string& case_id, const Image& image, const CodeVolume& code,
                                 const CasePreprocessingPlan& plan);

struct ConfigurationRun {
  std::string configuration;
  std::filesystem::path store_dir;
  int preprocessed = 0, unchanged = 0;
  struct Failure {
    std::string case_id, message;
  };
  std::vector<Failure> failures;
  double seconds = 0;
  std::uint64_t store_bytes = 0;
  std::vector<std::array<std::int64_t, 3>> shapes;  ///< per case, after resampling
  std::array<double, 3> spacing_mm{};
  /// combination -> (action text, voxels, cases), over the cases preprocessed in this run.
  std::map<std::string, std::tuple<std::string, std::int64_t, int>> rare_changes;
};

struct PreprocessRun {
  std::string dataset_name;
  bool ran_plan = false;
  std::string rare_policy;
  std::vector<ConfigurationRun> configurations;
  bool ok() const;
};

/// Preprocesses `dataset_dir`'s training cases for each configuration (running plan first when
/// plans.json is missing). Per-case failures are collected (the run goes on), and store.json is
/// written only when every case succeeded. Throws mlseg::Error for problems that stop everything.
PreprocessRun preprocess_dataset(const std::filesystem::path& dataset_dir, const PreprocessOptions& options);

std::string format_preprocess_report(const PreprocessRun& run);
nlohmann::ordered_json preprocess_run_to_json(const PreprocessRun& run);

}  // namespace mlseg
