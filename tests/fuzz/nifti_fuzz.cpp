// libFuzzer target: mlseg's own NIfTI reader (nifti_format.h) — header parse and geometry on the
// bytes, then the torch-free pixel readers (pixel_io.h) on the same bytes as a .nii or .nii.gz file.
// Bad input must end in mlseg::Error; anything else (crash, sanitizer report, another exception,
// an allocation past libFuzzer's -malloc_limit_mb) is a finding.
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/nifti_format.h"
#include "mlseg/io/pixel_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    if (const auto header = mlseg::parse_nifti_header(data, size)) (void)mlseg::nifti_geometry(*header);
  } catch (const mlseg::Error&) {
  }
  // gzip's magic picks the ending, as a user's file would have it.
  const bool gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const auto path = mlseg::fuzz::write_input(gzipped ? "input.nii.gz" : "input.nii", data, size);
  try {
    (void)mlseg::read_intensity_pixels(path);
  } catch (const mlseg::Error&) {
  }
  try {
    (void)mlseg::read_label_pixels(path);
  } catch (const mlseg::Error&) {
  }
  return 0;
}
