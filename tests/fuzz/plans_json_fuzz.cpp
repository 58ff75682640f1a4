// libFuzzer target: plans.json through read_plans (plans_file.h) — parse, check_plans, the typed
// configurations and the label encoding. Bad input must end in mlseg::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.h"
#include "mlseg/core/error.h"
#include "mlseg/planning/plans_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = mlseg::fuzz::write_input("plans.json", data, size);
  try {
    (void)mlseg::read_plans(path);
  } catch (const mlseg::Error&) {
  }
  return 0;
}
