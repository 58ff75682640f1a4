#pragma once
// Reads the pixel section of a NIfTI-1 file (.nii / .nii.gz) directly with zlib.
//
// ITK's bundled nifti1_io silently replaces NaN/Inf floats with 0 and zero-fills a truncated
// .nii.gz; mlseg must report both. This reader keeps every value as stored, checks that the
// stream holds all promised bytes, and leaves scaling (scl_slope/scl_inter) to the caller.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "mlseg/core/shared_buffer.h"

namespace mlseg {

struct NiftiPixels {
  SharedBuffer bytes;  ///< num_elements * element_size bytes, native byte order, file order (may
                      ///< start at any byte offset of its block: an odd vox_offset)
  int datatype = 0;     ///< NIfTI datatype code (2 uint8, 4 int16, 8 int32, 16 float32, 64 float64,
                        ///< 256 int8, 512 uint16, 768 uint32, 1024 int64, 1280 uint64)
  double slope = 1.0;   ///< applied only when `rescale`
  double intercept = 0.0;
  bool rescale = false;  ///< slope finite and nonzero, and (slope, intercept) != (1, 0)
};

/// nullopt when the file is not a single-file NIfTI-1 with a plain scalar datatype (the caller
/// then falls back to ITK). Throws mlseg::Error (file_truncated / corrupt_pixel_data) when the
/// pixel data is shorter than the header promises or the gzip stream is corrupt.
std::optional<NiftiPixels> read_nifti1_pixels(const std::filesystem::path& path, std::int64_t num_elements);

}  // namespace mlseg
