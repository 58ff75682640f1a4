// The one --device resolver of train and predict (src/mlseg/nn/device.cpp), and the recognition of
// device out-of-memory errors that prediction falls back from.
#include "mlseg/nn/device.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <string>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

std::string problem_of(const std::string& name, std::size_t cuda_devices) {
  try {
    resolve_device(name, cuda_devices);
  } catch (const Error& e) {
    return e.problem() + " | " + e.fix();
  }
  return "";
}

TEST(Device, NamesResolveToOneDeviceWithAnExplicitIndex) {
  EXPECT_EQ(resolve_device("cpu", 0), c10::Device(c10::kCPU));
  EXPECT_EQ(resolve_device("cpu", 2), c10::Device(c10::kCPU));
  EXPECT_EQ(resolve_device("auto", 0), c10::Device(c10::kCPU));
  // train and predict both name the first GPU cuda:0, for "cuda" and "auto" alike.
  EXPECT_EQ(resolve_device("auto", 2), c10::Device(c10::kCUDA, 0));
  EXPECT_EQ(resolve_device("cuda", 1), c10::Device(c10::kCUDA, 0));
  EXPECT_EQ(resolve_device("cuda", 1).str(), "cuda:0");
  EXPECT_EQ(resolve_device("cuda:0", 1), c10::Device(c10::kCUDA, 0));
  EXPECT_EQ(resolve_device("cuda:1", 2), c10::Device(c10::kCUDA, 1));
}

TEST(Device, ErrorsNameTheProblemAndTheFix) {
  EXPECT_NE(problem_of("cuda", 0).find("sees no CUDA device"), std::string::npos);
  EXPECT_NE(problem_of("cuda", 0).find("--device cpu"), std::string::npos);
  EXPECT_NE(problem_of("cuda:0", 0).find("sees no CUDA device"), std::string::npos);
  const std::string out_of_range = problem_of("cuda:2", 2);
  EXPECT_NE(out_of_range.find("only 2 CUDA devices are visible (cuda:0 .. cuda:1)"), std::string::npos) << out_of_range;
  EXPECT_NE(out_of_range.find("CUDA_VISIBLE_DEVICES"), std::string::npos);
  EXPECT_NE(problem_of("cuda:1", 1).find("only 1 CUDA device is visible (cuda:0)"), std::string::npos);
  for (const char* bad : {"cuda:", "cuda:x", "cuda:-1", "cuda:1.5", "cuda:99999"}) {
    EXPECT_NE(problem_of(bad, 2).find("is not a device index"), std::string::npos) << bad;
  }
  for (const char* unknown : {"gpu", "CUDA", "", "mps", "cuda0"}) {
    EXPECT_NE(problem_of(unknown, 2).find("unknown --device"), std::string::npos) << unknown;
  }
}

TEST(Device, TheOneArgumentFormAsksThisLibTorch) {
  EXPECT_EQ(resolve_device("cpu"), c10::Device(c10::kCPU));
  if (torch::cuda::is_available()) {
    EXPECT_EQ(resolve_device("auto"), c10::Device(c10::kCUDA, 0));
  } else {
    EXPECT_EQ(resolve_device("auto"), c10::Device(c10::kCPU));
    EXPECT_THROW(resolve_device("cuda"), Error);
  }
}

TEST(Device, OutOfMemoryIsRecognisedByTypeOrMessage) {
  auto recognised = [](auto&& raise) {
    try {
      raise();
    } catch (const c10::Error& e) {
      return is_out_of_memory(e);
    }
    ADD_FAILURE() << "nothing was thrown";
    return false;
  };
  EXPECT_TRUE(recognised([] { TORCH_CHECK_WITH(OutOfMemoryError, false, "Tried to allocate 2.00 GiB"); }));
  EXPECT_TRUE(recognised([] { TORCH_CHECK(false, "CUDA out of memory. Tried to allocate 2.00 GiB"); }));
  EXPECT_TRUE(recognised([] { TORCH_CHECK(false, "CUDA error: out of memory"); }));
  EXPECT_TRUE(recognised([] { TORCH_CHECK(false, "cuDNN error: CUDNN_STATUS_ALLOC_FAILED"); }));
  EXPECT_TRUE(recognised([] { TORCH_CHECK(false, "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"); }));
  // Not the device's memory: no fallback to the CPU helps.
  EXPECT_FALSE(recognised([] { TORCH_CHECK(false, "DefaultCPUAllocator: not enough memory: you tried to allocate 8 GB"); }));
  EXPECT_FALSE(recognised([] { TORCH_CHECK(false, "Expected all tensors to be on the same device"); }));
}

}  // namespace
}  // namespace mlseg
