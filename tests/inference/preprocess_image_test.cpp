// Prediction's preprocessing (src/mlseg/inference/preprocess_image.cpp) gives the network the same
// image training saw: on real 2-modality BraTS cases (FLAIR, T1c) (nonzero-mask cropping, z-score inside the mask,
// zeros outside) the inference path equals the preprocessed store `mlseg preprocess` wrote.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/inference/predict.h"
#include "mlseg/inference/preprocess_image.h"
#include "mlseg/io/npy.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/preprocessing/preprocess.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

namespace fs = std::filesystem;

TEST(PreprocessImageRealData, BratsModalitiesEqualTheTrainingStore) {
  MLSEG_REQUIRE_SHARED_DATA();
  testing::TempDir tmp;
  const std::vector<std::string> cases = {"BRATS_0002", "BRATS_0003"};
  const fs::path raw = parity::link_dataset_subset(testing::shared_data_dir() / "Dataset001_BraTS2015", cases,
                                                   tmp / "Dataset001_BraTS2015");
  PreprocessOptions options;
  options.work_dir = (tmp / "work").string();
  options.show_progress = false;
  options.threads = 2;
  ASSERT_TRUE(preprocess_dataset(raw, options).ok());
  const fs::path work = tmp / "work" / "Dataset001_BraTS2015";
  const InferencePlan plan = inference_plan_from_plans(read_plans(work / "plans.json"), "3d_fullres");
  for (const InputCase& input : list_input_cases(raw / "imagesTr", 2)) {
    const PreprocessedImage predicted = preprocess_image(input.case_id, read_input_case(input), plan);
    const torch::Tensor stored = read_npy(store_image_file(work / "preprocessed" / "3d_fullres", input.case_id));
    ASSERT_EQ(stored.sizes(), predicted.image.sizes()) << input.case_id;
    const double difference = (stored.to(torch::kDouble) - predicted.image.to(torch::kDouble)).abs().max().item<double>();
    EXPECT_LE(difference, 1e-5) << input.case_id << ": prediction would see another image than training did";
    // Outside the brain both are 0 (z-score inside the nonzero mask only).
    EXPECT_EQ(predicted.image.select(0, 0).eq(0).sum().item<std::int64_t>(), stored.select(0, 0).eq(0).sum().item<std::int64_t>())
        << input.case_id;
  }
}

}  // namespace
}  // namespace mlseg
