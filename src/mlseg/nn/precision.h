#pragma once
// Numeric precision of the network's arithmetic (training --precision, predict --precision) and
// the bf16 autocast scope that applies it. `auto` (predict's default) picks bf16 where the CPU
// computes it natively (AVX512-BF16 or AMX-BF16, asked of the CPU itself through CPUID and of the
// OS through XGETBV) and fp32 everywhere else, and says why.
#include <torch/types.h>

#include <string>

namespace mlseg {

enum class Precision { fp32, bf16 };

/// "fp32" | "bf16" (no "auto": resolve_precision turns it into one of them).
Precision parse_precision(const std::string& name);
std::string to_string(Precision precision);

/// What this CPU offers for bf16 arithmetic.
struct CpuBf16Support {
  bool avx512_bf16 = false;  ///< AVX512_BF16 (CPUID 7.1 EAX bit 5) with AVX-512 state enabled by the OS
  bool amx_bf16 = false;     ///< AMX-BF16 (CPUID 7.0 EDX bit 22) with AMX tile state enabled by the OS
  bool any() const { return avx512_bf16 || amx_bf16; }
};
CpuBf16Support cpu_bf16_support();

/// A resolved --precision with the sentence the console shows ("bf16 (auto: the CPU has AVX512-BF16)").
struct PrecisionChoice {
  Precision precision = Precision::fp32;
  std::string reason;
};

/// `requested` "auto" | "fp32" | "bf16" on `device`. auto: bf16 on a CPU with AVX512-BF16 or
/// AMX-BF16, fp32 on other CPUs and on CUDA (bf16 there only when asked: pre-Ampere GPUs emulate it).
/// An unknown name throws with the fix.
PrecisionChoice resolve_precision(const std::string& requested, const torch::Device& device);
/// The same with the CPU's answer given (tests).
PrecisionChoice resolve_precision(const std::string& requested, const torch::Device& device, const CpuBf16Support& cpu);

/// RAII: bf16 autocast on `device` (CPU or CUDA) while alive; a no-op for fp32.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool previous_enabled_ = false;
};

}  // namespace mlseg
