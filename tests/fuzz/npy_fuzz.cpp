// libFuzzer target: the preprocessed store's .npy reader (npy.h): header, memory mapping, whole read.
// Bad input must end in mlseg::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = mlseg::fuzz::write_input("input.npy", data, size);
  try {
    (void)mlseg::read_npy_header(path);
    const auto mapping = mlseg::NpyMapping::open(path);
    const torch::Tensor view = mapping->tensor();
    (void)view.sum().item<double>();  // touches every mapped byte the header promised
    (void)mlseg::read_npy(path);
  } catch (const mlseg::Error&) {
  }
  return 0;
}
