#pragma once
// Where networks run: the one resolver of --device for every command that runs a network
// (train, predict, train's final validation), and the recognition of device out-of-memory errors
// for the fallbacks that follow nnU-Net (sliding-window accumulators moved to the CPU).
#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include <cstddef>
#include <string>

namespace mlseg {

/// --device's default: the first CUDA device when this LibTorch sees one, else the CPU.
inline constexpr const char* kDefaultDevice = "auto";
/// --device's help text, shared by the commands that take it.
inline constexpr const char* kDeviceFlagHelp = "cpu | cuda (= cuda:0) | cuda:N | auto (cuda:0 when CUDA is available, else cpu)";

/// "cpu", "cuda" (= cuda:0), "cuda:N" or "auto" → a device with an explicit index, so that
/// train and predict name the same device the same way. Throws mlseg::Error for another name,
/// for cuda without a CUDA device in this LibTorch, and for an index >= the visible devices.
c10::Device resolve_device(const std::string& name);

/// The same against `cuda_devices` visible CUDA devices (resolve_device passes
/// torch::cuda::device_count()); for tests of the CUDA cases on machines without one.
c10::Device resolve_device(const std::string& name, std::size_t cuda_devices);

/// For one rank of a multi-process run: "cuda" and "auto" (when it means CUDA) become
/// cuda:(local_rank mod visible devices), so ranks on one machine take one GPU each, as torchrun
/// users set with LOCAL_RANK; an explicit cuda:N and cpu are kept.
c10::Device resolve_device_for_rank(const std::string& name, int local_rank);
c10::Device resolve_device_for_rank(const std::string& name, int local_rank, std::size_t cuda_devices);

/// True when `error` says the device ran out of memory: c10::OutOfMemoryError (the CUDA caching
/// allocator's), or a c10::Error whose message names an allocation failure (cuDNN, cuBLAS and
/// CUDA runtime errors).
bool is_out_of_memory(const c10::Error& error);

}  // namespace mlseg
