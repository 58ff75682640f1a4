#pragma once
// Medical image reading without LibTorch: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage
// (.mha, .mhd), and 2D PNG, TIFF, JPEG, BMP, decoded into a SharedBuffer in [C, Z, Y, X] order
// (RGB pixels and 4D NIfTI volumes become channels). ITK does the decoding (image_read_itk.cpp
// only; scalar NIfTI pixels through mlseg's own reader); with MLSEG_WITH_ITK=OFF NIfTI is read by
// mlseg's own reader alone and other formats throw an mlseg::Error that says so. The tensor
// API (image_io.h: read_image, write_image, ...) is built on these.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/core/geometry.h"
#include "mlseg/core/shared_buffer.h"
#include "mlseg/labels/code_encode.h"

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

  std::vector<std::int64_t> channels_first_shape() const {
    return {num_channels, shape_zyx[0], shape_zyx[1], shape_zyx[2]};
  }
};

/// Reads the header only; validates dimensions (hostile-header guard) but decodes nothing.
ImageHeader read_image_header(const std::filesystem::path& path, const ImageReadOptions& options = {});

/// Intensities as float32 [C, Z, Y, X]. NaN/Inf voxels are kept (verify reports them).
struct IntensityPixels {
  SharedBuffer values;
  ImageHeader header;
};
IntensityPixels read_intensity_pixels(const std::filesystem::path& path, const ImageReadOptions& options = {});

/// Label values [C, Z, Y, X]: int64, or — with `compact` — uint8 / int8 / int16 when stored so
/// (no int64 copy: 8x less memory traffic for the common uint8 label map). Float-stored labels are
/// rounded after checking they are integers (within options.label_integer_tolerance) and finite;
/// otherwise an Error names the file, the first offending value and its voxel.
struct LabelPixels {
  SharedBuffer values;
  LabelValueType type = LabelValueType::int64;
  ImageHeader header;

  LabelValuesView view() const {
    return {values.data, type, header.num_channels, header.shape_zyx};
  }
};
LabelPixels read_label_pixels(const std::filesystem::path& path, const ImageReadOptions& options = {},
                              bool compact = true);

/// True for the file endings the readers understand.
bool is_supported_image_file(const std::filesystem::path& path);

/// True for 2D-only formats (PNG, JPEG, BMP, TIFF).
bool is_2d_image_format(const std::string& file_ending);

/// True when this build reads and writes every format above (built with ITK); an ITK-free build
/// reads and writes NIfTI only (nifti_image.h, nifti_format.h).
bool image_io_available();

}  // namespace mlseg
