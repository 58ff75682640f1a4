#include "mlseg/io/nifti_image.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/nifti_format.h"

namespace mlseg {
namespace fs = std::filesystem;
using detail::StoredPixels;
using detail::StoredType;

namespace {

constexpr const char* kReexportFix =
    "check that the file opens in a viewer (ITK-SNAP, 3D Slicer); re-export or re-download it";

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::optional<StoredType> stored_type_of(int datatype) {
  switch (datatype) {
    case kNiftiUInt8: return StoredType::uint8;
    case kNiftiInt8: return StoredType::int8;
    case kNiftiInt16: return StoredType::int16;
    case kNiftiUInt16: return StoredType::uint16;
    case kNiftiInt32: return StoredType::int32;
    case kNiftiUInt32: return StoredType::uint32;
    case kNiftiFloat32: return StoredType::float32;
    case kNiftiFloat64: return StoredType::float64;
    case kNiftiInt64: return StoredType::int64;
    case kNiftiUInt64: return StoredType::uint64;
    default: return std::nullopt;
  }
}

// ITK's rule for reporting scaled integers as float32: a slope of 0 or not finite counts as 1, an
// intercept that is not finite as 0. (The pixels themselves follow the NIfTI standard: no scaling
// at all unless the slope is finite and nonzero; NiftiHeader::rescale.)
bool scaled_to_float(const NiftiHeader& nifti) {
  const double slope = std::isfinite(nifti.scl_slope) && nifti.scl_slope != 0.0 ? nifti.scl_slope : 1.0;
  const double intercept = std::isfinite(nifti.scl_inter) ? nifti.scl_inter : 0.0;
  return slope != 1.0 || intercept != 0.0;
}

struct OpenedNifti {
  NiftiHeader nifti;
  ImageHeader header;
  std::int64_t num_elements = 0;
};

// The file's checks before its header (exists, regular, not empty, a NIfTI ending), then the parsed
// single-file header; `file_size` is set for the size checks that follow.
NiftiHeader read_checked_header(const fs::path& path, std::uintmax_t& file_size) {
  const ErrorLocation where{path.string(), "", ""};
  std::error_code status_error;
  if (!fs::exists(path, status_error)) {
    throw Error("file not found", "check the path and the dataset's file_ending", where).with_code("file_missing");
  }
  if (!fs::is_regular_file(path, status_error)) throw Error("not a regular file", "point to an image file", where);
  file_size = fs::file_size(path, status_error);
  if (file_size == 0) throw Error("the file is empty (0 bytes)", kReexportFix, where).with_code("file_empty");
  if (!is_nifti_file(path)) {
    throw Error("unsupported file ending '" + full_extension(path) + "' for mlseg's NIfTI reader", "use .nii.gz or .nii", where);
  }
  const std::optional<NiftiHeader> parsed = read_nifti_header(path);
  if (!parsed) {
    throw Error("not a valid " + full_extension(path) +
                    " file: its header cannot be read (corrupt, truncated, or another format with this extension)",
                kReexportFix, where)
        .with_code("unreadable_header");
  }
  if (!parsed->single_file) {
    throw Error("the header says the pixels are in a separate .img file (a two-file NIfTI), which a .nii cannot be",
                kReexportFix, where)
        .with_code("unreadable_header");
  }
  return *parsed;
}

// The header's geometry with positive, finite spacing, snapped to float32 as the ITK reader does
// (NIfTI-1 stores geometry as float32).
Geometry checked_geometry(const NiftiHeader& nifti, std::int64_t dims, const fs::path& path) {
  Geometry geometry = nifti_geometry(nifti, path);
  for (int axis = 0; axis < std::min<int>(static_cast<int>(dims), 3); ++axis) {
    const double spacing = geometry.spacing_zyx_mm[2 - axis];
    if (!std::isfinite(spacing) || spacing <= 0) {
      throw Error("voxel spacing along axis " + std::to_string(axis) + " is " + std::to_string(spacing) +
                      "; spacing must be positive and finite",
                  "fix the header's pixel dimensions (e.g. pixdim in NIfTI)", {path.string(), "", ""});
    }
  }
  return detail::snapped_to_float32(geometry);
}

// Reads and checks the header before any pixel memory is allocated (the ITK reader's checks).
OpenedNifti open_nifti(const fs::path& path, const ImageReadOptions& options) {
  const ErrorLocation where{path.string(), "", ""};
  std::uintmax_t file_size = 0;
  OpenedNifti opened;
  opened.nifti = read_checked_header(path, file_size);
  const NiftiHeader& nifti = opened.nifti;
  std::int64_t dims = nifti.dim[0];
  if (dims < 1 || dims > 7) {
    throw Error("the header declares " + std::to_string(dims) + " dimensions (NIfTI allows 1 to 7)", kReexportFix, where)
        .with_code("implausible_header");
  }
  while (dims > 3 && nifti.dim[dims] == 1) --dims;  // trailing singleton dimensions (ITK drops them too)
  if (dims < 2 || dims > 4) {
    throw Error("the image has " + std::to_string(dims) +
                    " dimensions; mlseg reads 2D, 3D and 4D (one volume per channel) images",
                "store one 2D/3D image per file, or 4D with channels as the 4th dimension", where);
  }
  std::array<std::int64_t, 4> size{1, 1, 1, 1};  // x, y, z, t
  for (std::int64_t axis = 0; axis < dims; ++axis) {
    const std::int64_t extent = nifti.dim[axis + 1];
    if (extent < 1 || extent > options.max_elements) {
      throw Error("the header declares an impossible size of " + std::to_string(extent) + " voxels along axis " +
                      std::to_string(axis),
                  kReexportFix, where)
          .with_code("implausible_header");
    }
    size[axis] = extent;
  }
  const long double elements = static_cast<long double>(size[0]) * size[1] * size[2] * size[3];
  if (elements > static_cast<long double>(options.max_elements)) {
    std::ostringstream text;
    text << "the header declares " << size[0] << " x " << size[1] << " x " << size[2];
    if (dims == 4) text << " x " << size[3];
    text << " = " << static_cast<double>(elements) << " values, above the limit of " << options.max_elements
         << " (a corrupt or hostile header)";
    throw Error(text.str(), std::string(kReexportFix) + "; if the image is truly this large, raise ImageReadOptions::max_elements",
                where)
        .with_code("implausible_header");
  }
  const int element_size = nifti_element_size(nifti.datatype);
  if (element_size == 0) {
    throw Error("unsupported NIfTI pixel type (" + nifti_datatype_name(nifti.datatype) +
                    "): mlseg reads integer and float scalar NIfTI without ITK",
                "convert the image to an integer or float pixel type, or use an mlseg built with ITK", where);
  }
  const long double pixel_bytes = elements * element_size;
  const std::string ending = lower(full_extension(path));
  if (ending == ".nii" && static_cast<long double>(std::max<std::int64_t>(nifti.vox_offset, 0)) + pixel_bytes >
                              static_cast<long double>(file_size)) {
    throw Error("the file is truncated: its header promises " + std::to_string(static_cast<long long>(pixel_bytes)) +
                    " bytes of pixel data but the whole file holds " + std::to_string(file_size),
                kReexportFix, where)
        .with_code("file_truncated");
  }
  if (pixel_bytes > options.max_compression_ratio * static_cast<long double>(file_size)) {
    throw Error("the header declares " + std::to_string(static_cast<long long>(pixel_bytes)) + " bytes of pixels in a file of " +
                    std::to_string(file_size) + " bytes, beyond any real compression ratio (corrupt or hostile header)",
                kReexportFix, where)
        .with_code("implausible_header");
  }
  if (nifti.vox_offset < nifti.header_size()) {
    throw Error("the header's vox_offset (" + std::to_string(nifti.vox_offset) + ") points inside the header", kReexportFix, where)
        .with_code("unreadable_header");
  }

  ImageHeader& header = opened.header;
  header.num_dimensions = static_cast<int>(dims);
  header.shape_zyx = {size[2], size[1], size[0]};
  header.num_channels = dims == 4 ? size[3] : 1;
  header.component_type = nifti_datatype_name(nifti.datatype);
  header.floating_point = nifti.datatype == kNiftiFloat32 || nifti.datatype == kNiftiFloat64;
  if (!header.floating_point && scaled_to_float(nifti)) {
    header.component_type = "float32";  // the ITK reader reports scaled integers as float32
    header.floating_point = true;
  }
  header.geometry = checked_geometry(nifti, dims, path);
  opened.num_elements = static_cast<std::int64_t>(elements);
  return opened;
}

StoredPixels read_pixels(const fs::path& path, const OpenedNifti& opened) {
  auto stored = detail::read_nifti_stored_pixels(path, opened.num_elements);
  if (!stored) {
    throw Error("cannot read the pixel data of this NIfTI file", kReexportFix, {path.string(), "", ""})
        .with_code("corrupt_pixel_data");
  }
  return *stored;
}

}  // namespace

bool is_nifti_file(const fs::path& path) {
  const std::string ending = lower(full_extension(path));
  return ending == ".nii" || ending == ".nii.gz";
}

ImageHeader read_nifti_image_header(const fs::path& path, const ImageReadOptions& options) {
  return open_nifti(path, options).header;
}

IntensityPixels read_nifti_intensity_pixels(const fs::path& path, const ImageReadOptions& options) {
  const OpenedNifti opened = open_nifti(path, options);
  return detail::intensity_pixels_from(read_pixels(path, opened), opened.header);
}

LabelPixels read_nifti_label_pixels(const fs::path& path, const ImageReadOptions& options, bool compact) {
  const OpenedNifti opened = open_nifti(path, options);
  return detail::label_pixels_from(path, read_pixels(path, opened), opened.header, options, compact);
}

namespace detail {

std::optional<StoredPixels> read_nifti_stored_pixels(const fs::path& path, std::int64_t num_elements) {
  auto nifti = read_nifti_pixels(path, num_elements);
  if (!nifti) return std::nullopt;
  const auto type = stored_type_of(nifti->header.datatype);
  if (!type) return std::nullopt;
  StoredPixels stored;
  stored.bytes = nifti->bytes;
  stored.type = *type;
  stored.interleaved = false;
  stored.rescale = nifti->header.rescale();
  stored.slope = nifti->header.scl_slope;
  stored.intercept = nifti->header.scl_inter;
  return stored;
}

}  // namespace detail
}  // namespace mlseg
