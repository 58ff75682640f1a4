#pragma once
// Internal to io's readers (ITK's and mlseg's own NIfTI reader): pixels as a file stores them,
// turned into what pixel_io.h promises: float32 intensities, or label values checked to be
// integers, in [C, Z, Y, X] order.
#include <cstdint>
#include <filesystem>
#include <string>

#include "mlseg/io/pixel_io.h"

namespace mlseg::detail {

/// Stored value types, independent of the decoder.
enum class StoredType { uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32, float64 };

std::string stored_type_name(StoredType type);
int stored_type_bytes(StoredType type);

/// Pixels as decoded: raw values of `type`, and the scaling still to apply. Values are either
/// planar ([C, Z, Y, X]: one scalar volume per channel) or interleaved (components innermost,
/// as ITK decodes RGB pixels).
struct StoredPixels {
  SharedBuffer bytes;
  StoredType type = StoredType::uint8;
  bool interleaved = false;
  bool rescale = false;
  double slope = 1.0;
  double intercept = 0.0;
};

/// Geometry rounded to float32, what a NIfTI-1 header can hold: digits beyond it are noise from
/// quaternion arithmetic and would make write(read(file)) drift. Both NIfTI readers end with it.
Geometry snapped_to_float32(Geometry geometry);

/// Intensities as float32 [C, Z, Y, X], scaled.
IntensityPixels intensity_pixels_from(const StoredPixels& stored, const ImageHeader& header);

/// Label values (see read_label_pixels): kept as stored with `compact` for planar uint8 / int8 /
/// int16 without scaling, else int64; float values must be integers within
/// options.label_integer_tolerance, or an Error names `path`, the voxel and the value.
LabelPixels label_pixels_from(const std::filesystem::path& path, StoredPixels stored, const ImageHeader& header,
                              const ImageReadOptions& options, bool compact);

}  // namespace mlseg::detail
