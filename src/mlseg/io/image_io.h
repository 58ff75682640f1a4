#pragma once
// Medical image read/write as Images ([C, Z, Y, X] tensor + Geometry), on top of the torch-free
// readers in pixel_io.h (formats, options and headers are declared there). With
// MLSEG_WITH_ITK=OFF they read and write NIfTI only; other formats throw an mlseg::Error that says so.
#include <filesystem>

#include "mlseg/core/image.h"
#include "mlseg/io/pixel_io.h"

namespace mlseg {

/// Intensity image as float32 [C, Z, Y, X]. NaN/Inf voxels are kept (verify reports them).
Image read_image(const std::filesystem::path& path, const ImageReadOptions& options = {});

/// Label image as int64 [C, Z, Y, X] (see read_label_pixels).
Image read_label_image(const std::filesystem::path& path, const ImageReadOptions& options = {});

/// Like read_label_image, but integer labels stored as uint8 / int8 / int16 come back in that
/// type; every other storage, and scaled data, comes back as int64.
Image read_label_image_compact(const std::filesystem::path& path, const ImageReadOptions& options = {});

struct ImageWriteOptions {
  bool compress = true;  ///< gzip/zlib where the format supports it
};

/// Writes `image` in the format given by the file's extension, atomically (temporary file then
/// rename). The tensor's dtype is stored as is (uint8/int8/int16/int32/int64/float32/float64);
/// for PNG/JPEG/BMP it must be uint8 (or fit in it). [C, Z, Y, X] with C > 1 is stored as a 4D
/// volume for 3D formats, and as RGB(A) for 2D formats with C = 3 or 4.
void write_image(const Image& image, const std::filesystem::path& path,
                 const ImageWriteOptions& options = {});

}  // namespace mlseg
