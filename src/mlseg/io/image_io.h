#pragma once
// Medical image read/write: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd),
// and 2D PNG, TIFF, JPEG, BMP. Everything comes back as an Image ([C, Z, Y, X] + Geometry);
// RGB pixels and 4D NIfTI volumes become channels. ITK does the decoding (in image_io_itk.cpp
// only); with MLSEG_WITH_ITK=OFF these functions throw an mlseg::Error that says so.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "mlseg/core/image.h"

namespace mlseg {

struct ImageReadOptions {
  /// Hard cap on voxels x channels in one file, checked from the header before anything is
  /// allocated (2^31 float voxels = 8 GiB).
  std::int64_t max_elements = std::int64_t{1} << 31;
  /// A header promising more pixel bytes than this many times the file size is rejected
  /// (hostile or corrupt header). Deflate cannot exceed 1032:1; no real medical file comes close.
  double max_compression_ratio = 2000.0;
  /// Label maps stored as floats must be integers within this tolerance (a mask whose scale
  /// factor makes 1 read as 0.99999997 passes; 0.5 does not).
  double label_integer_tolerance = 1e-3;
};

/// What a file's header says, read without decoding the pixels.
struct ImageHeader {
  std::array<std::int64_t, 3> shape_zyx{1, 1, 1};
  std::int64_t num_channels = 1;  ///< pixel components (RGB = 3) or 4th-dimension volumes
  int num_dimensions = 3;         ///< as stored: 2 for PNG, 3, or 4 for multi-volume NIfTI
  std::string component_type;     ///< "uint8", "int16", "float32", ...
  bool floating_point = false;
  Geometry geometry;
};

/// Reads the header only; validates dimensions (hostile-header guard) but decodes nothing.
ImageHeader read_image_header(const std::filesystem::path& path, const ImageReadOptions& options = {});

/// Intensity image as float32 [C, Z, Y, X]. NaN/Inf voxels are kept (verify reports them).
Image read_image(const std::filesystem::path& path, const ImageReadOptions& options = {});

/// Label image as int64 [C, Z, Y, X]. Float-stored labels are rounded after checking they are
/// integers (within options.label_integer_tolerance) and finite; otherwise an Error names the
/// file, the first offending value and its voxel.
Image read_label_image(const std::filesystem::path& path, const ImageReadOptions& options = {});

/// Like read_label_image, but integer labels stored as uint8 / int8 / int16 come back in that
/// type (no int64 copy: 8x less memory traffic for the common uint8 label map); every other
/// storage, and scaled data, comes back as read_label_image returns it (int64).
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

/// True for the file endings read_image understands.
bool is_supported_image_file(const std::filesystem::path& path);

/// True for 2D-only formats (PNG, JPEG, BMP, TIFF).
bool is_2d_image_format(const std::string& file_ending);

/// True when this build can read and write images (built with ITK).
bool image_io_available();

}  // namespace mlseg
