#include "mlseg/nn/device.h"

#include <torch/cuda.h>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

constexpr const char* kCudaPrefix = "cuda:";
constexpr const char* kNoCudaFix =
    "use --device cpu (or auto), or build mlseg against a CUDA LibTorch on a GPU machine (README: Building on a GPU machine)";

}  // namespace

c10::Device resolve_device(const std::string& name) { return resolve_device(name, torch::cuda::device_count()); }

c10::Device resolve_device(const std::string& name, std::size_t cuda_devices) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "auto") return cuda_devices > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  long long index = -1;
  if (name == "cuda") {
    index = 0;
  } else if (name.rfind(kCudaPrefix, 0) == 0) {
    const std::string digits = name.substr(std::char_traits<char>::length(kCudaPrefix));
    const bool all_digits = !digits.empty() && digits.size() <= 3 && digits.find_first_not_of("0123456789") == std::string::npos;
    if (!all_digits) {
      throw Error("--device " + name + ": '" + digits + "' is not a device index", "write cuda:N with N a number, e.g. cuda:0");
    }
    index = std::stoll(digits);
  } else {
    throw Error("unknown --device '" + name + "'", "use cpu, cuda, cuda:N (N = 0 for the first GPU) or auto");
  }
  if (cuda_devices == 0) throw Error("--device " + name + ", but this LibTorch sees no CUDA device", kNoCudaFix);
  if (static_cast<std::size_t>(index) >= cuda_devices) {
    throw Error("--device " + name + ", but only " + std::to_string(cuda_devices) + " CUDA device" +
                    (cuda_devices == 1 ? " is" : "s are") + " visible (cuda:0" +
                    (cuda_devices > 1 ? " .. cuda:" + std::to_string(cuda_devices - 1) : std::string()) + ")",
                "pass an index below " + std::to_string(cuda_devices) + ", or check CUDA_VISIBLE_DEVICES");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::Device resolve_device_for_rank(const std::string& name, int local_rank) {
  return resolve_device_for_rank(name, local_rank, torch::cuda::device_count());
}

c10::Device resolve_device_for_rank(const std::string& name, int local_rank, std::size_t cuda_devices) {
  const c10::Device device = resolve_device(name, cuda_devices);
  if (!device.is_cuda() || (name != "cuda" && name != "auto") || local_rank <= 0) return device;
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(static_cast<std::size_t>(local_rank) % cuda_devices));
}

bool is_out_of_memory(const c10::Error& error) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&error) != nullptr) return true;
  const std::string message = error.what_without_backtrace();
  // The CUDA runtime ("CUDA error: out of memory"), the caching allocator before it threw its own
  // type ("CUDA out of memory. Tried to allocate ..."), cuDNN and cuBLAS workspaces.
  return message.find("out of memory") != std::string::npos || message.find("STATUS_ALLOC_FAILED") != std::string::npos;
}

}  // namespace mlseg
