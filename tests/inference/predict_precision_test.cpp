// --precision of `mlseg predict` (issue #23, part 2): what `auto` chooses for a CPU with and without
// AVX512-BF16 / AMX-BF16, and that a trained phantom model predicts the same masks in bf16 as in
// fp32: ≥ 99.9 % of voxels agree per channel and the Dice against the reference differs by ≤ 0.002.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/core/error.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/nn/precision.h"
#include "mlseg/inference/predict_case.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/synth/phantom.h"
#include "inference/phantom_model_support.h"
#include "test_support.h"

namespace {

using namespace mlseg;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

TEST(PredictPrecision, AutoIsBf16OnlyWhereTheCpuComputesIt) {
  const torch::Device cpu(torch::kCPU);
  CpuBf16Support none, avx512, amx;
  avx512.avx512_bf16 = true;
  amx.amx_bf16 = true;
  EXPECT_EQ(resolve_precision("auto", cpu, none).precision, Precision::fp32);
  EXPECT_NE(resolve_precision("auto", cpu, none).reason.find("neither AVX512-BF16 nor AMX-BF16"), std::string::npos);
  EXPECT_EQ(resolve_precision("auto", cpu, avx512).precision, Precision::bf16);
  EXPECT_NE(resolve_precision("auto", cpu, avx512).reason.find("AVX512-BF16"), std::string::npos);
  EXPECT_EQ(resolve_precision("auto", cpu, amx).precision, Precision::bf16);
  EXPECT_NE(resolve_precision("auto", cpu, amx).reason.find("AMX-BF16"), std::string::npos);
  EXPECT_EQ(resolve_precision("auto", torch::Device("cuda:0"), avx512).precision, Precision::fp32);
  // Explicit choices win over the CPU.
  EXPECT_EQ(resolve_precision("fp32", cpu, avx512).precision, Precision::fp32);
  EXPECT_EQ(resolve_precision("bf16", cpu, none).precision, Precision::bf16);
  EXPECT_THROW(resolve_precision("fp16", cpu, none), Error);
  // The real CPU's answer is one of the two, with a reason.
  EXPECT_FALSE(resolve_precision("auto", cpu).reason.empty());
}

double dice(const torch::Tensor& a, const torch::Tensor& b) {
  const double overlap = (a & b).sum().item<double>(), total = a.sum().item<double>() + b.sum().item<double>();
  return total > 0 ? 2.0 * overlap / total : 1.0;
}

TEST(PredictPrecision, Bf16AndFp32PredictionsOfATrainedPhantomModelAgree) {
  mlseg::testing::TempDir dir;
  PhantomOptions phantom;
  phantom.num_cases = 4;
  phantom.num_test_cases = 0;
  phantom.shape_zyx = {12, 32, 32};
  phantom.num_channels = 3;
  phantom.show_progress = false;
  phantom.threads = 1;
  const fs::path raw = dir / "raw" / "Dataset900_Phantom";
  write_phantom_dataset(raw, phantom);
  PreprocessOptions preprocess;
  preprocess.work_dir = (dir / "work").string();
  preprocess.show_progress = false;
  preprocess.threads = 2;
  ASSERT_TRUE(preprocess_dataset(raw, preprocess).ok());
  const fs::path dataset_work = dir / "work" / "Dataset900_Phantom";
  const ModelDescription model = mlseg::testing::sigmoid_phantom_model(dataset_work, raw);
  // Trained on cases 0 and 1 until the masks are found; predicted on all four.
  const SegmentationNetwork network = mlseg::testing::train_phantom_network(model, dataset_work, {"phantom_0000", "phantom_0001"}, 60);

  const Dataset dataset = load_dataset(raw);
  PredictOptions options;
  options.threads = 2;
  options.use_mirroring = false;  // 8x fewer forwards; mirroring adds nothing to the comparison
  std::int64_t voxels = 0;
  std::vector<std::int64_t> disagreeing(model.channel_names.size(), 0);
  std::vector<double> dice_fp32_sum(model.channel_names.size(), 0), dice_bf16_sum(model.channel_names.size(), 0);
  for (const CaseFiles& files : dataset.training) {
    const Image image = read_case_images(dataset, files);
    options.precision = Precision::fp32;
    const PredictedCase fp32 = predict_case({network}, model, image, options, files.case_id);
    options.precision = Precision::bf16;
    const PredictedCase bf16 = predict_case({network}, model, image, options, files.case_id);
    const torch::Tensor a = decode_channels(fp32.code), b = decode_channels(bf16.code);
    const torch::Tensor reference = decode_channels(read_case_labels(dataset, files).code);
    ASSERT_EQ(a.sizes(), reference.sizes());
    voxels += a[0].numel();
    for (std::size_t c = 0; c < disagreeing.size(); ++c) {
      const auto ci = static_cast<std::int64_t>(c);
      disagreeing[c] += (a[ci] != b[ci]).sum().item<std::int64_t>();
      dice_fp32_sum[c] += dice(a[ci], reference[ci]);
      dice_bf16_sum[c] += dice(b[ci], reference[ci]);
    }
  }
  const double cases = static_cast<double>(dataset.training.size());
  for (std::size_t c = 0; c < disagreeing.size(); ++c) {
    const double agreement = 1.0 - static_cast<double>(disagreeing[c]) / static_cast<double>(voxels);
    const double dice_fp32 = dice_fp32_sum[c] / cases, dice_bf16 = dice_bf16_sum[c] / cases;
    std::cout << "[precision] " << model.channel_names[c] << ": bf16 agrees with fp32 on " << 100.0 * agreement << " % of "
              << voxels << " voxels; Dice fp32 " << dice_fp32 << ", bf16 " << dice_bf16 << "\n";
    EXPECT_GE(agreement, 0.999) << model.channel_names[c];
    EXPECT_LE(std::abs(dice_fp32 - dice_bf16), 0.002) << model.channel_names[c];
  }
  // The model must have learned something, or agreement on empty masks would prove nothing.
  EXPECT_GT(dice_fp32_sum[0] / cases, 0.5) << "channel 0 after 60 SGD steps";
}

}  // namespace
