#include "mlseg/nn/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define MLSEG_HAVE_CPUID 1
#endif

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

#ifdef MLSEG_HAVE_CPUID
// XCR0: which register states the OS saves on a context switch (XGETBV, ecx = 0).
unsigned long long xcr0() {
  unsigned int eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

}  // namespace

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw Error("unknown --precision '" + name + "'", "use fp32 or bf16 (predict also takes auto)");
}

std::string to_string(Precision precision) { return precision == Precision::fp32 ? "fp32" : "bf16"; }

CpuBf16Support cpu_bf16_support() {
  CpuBf16Support support;
#ifdef MLSEG_HAVE_CPUID
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return support;
  __cpuid(1, eax, ebx, ecx, edx);
  const bool osxsave = (ecx >> 27) & 1u;
  if (!osxsave) return support;
  const unsigned long long xcr = xcr0();
  // AVX-512 needs opmask, ZMM_Hi256 and Hi16_ZMM state (bits 5-7) plus SSE/AVX (1-2).
  const bool avx512_state = (xcr & 0xE6ull) == 0xE6ull;
  // AMX needs XTILECFG and XTILEDATA state (bits 17-18).
  const bool amx_state = (xcr & (3ull << 17)) == (3ull << 17);
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned int max_subleaf = eax;
  const bool avx512f = (ebx >> 16) & 1u;
  support.amx_bf16 = amx_state && ((edx >> 22) & 1u);
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    support.avx512_bf16 = avx512_state && avx512f && ((eax >> 5) & 1u);
  }
#endif
  return support;
}

PrecisionChoice resolve_precision(const std::string& requested, const torch::Device& device, const CpuBf16Support& cpu) {
  if (requested != "auto") {
    const Precision precision = parse_precision(requested);
    return {precision, to_string(precision) + " (--precision " + requested + ")"};
  }
  if (device.is_cuda()) return {Precision::fp32, "fp32 (auto: bf16 on CUDA only with --precision bf16)"};
  if (cpu.amx_bf16) return {Precision::bf16, "bf16 (auto: the CPU has AMX-BF16; --precision fp32 for float32)"};
  if (cpu.avx512_bf16) return {Precision::bf16, "bf16 (auto: the CPU has AVX512-BF16; --precision fp32 for float32)"};
  return {Precision::fp32, "fp32 (auto: the CPU has neither AVX512-BF16 nor AMX-BF16)"};
}

PrecisionChoice resolve_precision(const std::string& requested, const torch::Device& device) {
  return resolve_precision(requested, device, cpu_bf16_support());
}

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) {
  if (precision != Precision::bf16) return;
  active_ = true;
  cuda_ = device.is_cuda();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  previous_enabled_ = at::autocast::is_autocast_enabled(type);
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, true);
#else
  if (cuda_) {
    previous_enabled_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    previous_enabled_ = at::autocast::is_cpu_enabled();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
#endif
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(cuda_ ? at::kCUDA : at::kCPU, previous_enabled_);
#else
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
  } else {
    at::autocast::set_cpu_enabled(previous_enabled_);
  }
#endif
  if (!previous_enabled_) at::autocast::clear_cache();
}

}  // namespace mlseg
