// libFuzzer target: the 2D readers (PNG, TIFF) through image_io.h's read_image and
// read_label_image (ITK decodes; ITK itself is not instrumented, so coverage guides the fuzzer
// through mlseg's side only). The PNG signature picks .png, anything else is tried as .tif.
// Bad input must end in mlseg::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_input_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool png = size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0;
  const auto path = mlseg::fuzz::write_input(png ? "input.png" : "input.tif", data, size);
  try {
    (void)mlseg::read_image(path);
  } catch (const mlseg::Error&) {
  }
  try {
    (void)mlseg::read_label_image(path);
  } catch (const mlseg::Error&) {
  }
  return 0;
}
