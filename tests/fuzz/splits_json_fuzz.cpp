// libFuzzer target: splits_final.json through read_json_file + folds_from_json (splits.h).
// Bad input must end in mlseg::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.h"
#include "mlseg/analysis/splits.h"
#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = mlseg::fuzz::write_input("splits_final.json", data, size);
  try {
    (void)mlseg::folds_from_json(mlseg::read_json_file(path), path.string());
  } catch (const mlseg::Error&) {
  }
  return 0;
}
