// ITK reading, without LibTorch: the header is read and checked before any pixel memory is
// allocated, and pixels are decoded straight into a buffer we own (itk::ImageIOBase directly, no
// templated pipeline). Scalar NIfTI pixels go through mlseg's own reader (nifti_format.h).
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/itk_support.h"
#include "mlseg/io/nifti_format.h"
#include "mlseg/io/nifti_image.h"
#include "mlseg/io/png_check.h"
#include "mlseg/io/tiff_check.h"
#include "mlseg/io/pixel_convert.h"
#include "mlseg/io/pixel_io.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

using detail::ComponentType;
using detail::StoredPixels;
using detail::StoredType;
using detail::intensity_pixels_from;
using detail::label_pixels_from;
using detail::itk_reason;
using detail::kReexportFix;
using detail::lower;
using detail::register_itk_factories;

std::string component_name(ComponentType type) {
  switch (type) {
    case ComponentType::UCHAR: return "uint8";
    case ComponentType::CHAR: return "int8";
    case ComponentType::USHORT: return "uint16";
    case ComponentType::SHORT: return "int16";
    case ComponentType::UINT: return "uint32";
    case ComponentType::INT: return "int32";
    case ComponentType::ULONG: return sizeof(unsigned long) == 8 ? "uint64" : "uint32";
    case ComponentType::LONG: return sizeof(long) == 8 ? "int64" : "int32";
    case ComponentType::ULONGLONG: return "uint64";
    case ComponentType::LONGLONG: return "int64";
    case ComponentType::FLOAT: return "float32";
    case ComponentType::DOUBLE: return "float64";
    default: return "unknown";
  }
}

struct OpenedImage {
  itk::ImageIOBase::Pointer io;
  ImageHeader header;
  std::int64_t num_elements = 0;  // voxels x channels
};

OpenedImage open_image(const fs::path& path, const ImageReadOptions& options) {
  register_itk_factories();
  const ErrorLocation where{path.string(), "", ""};
  std::error_code status_error;
  if (!fs::exists(path, status_error)) {
    throw Error("file not found", "check the path and the dataset's file_ending", where).with_code("file_missing");
  }
  if (!fs::is_regular_file(path, status_error)) {
    throw Error("not a regular file", "point to an image file", where);
  }
  const std::uintmax_t file_size = fs::file_size(path, status_error);
  if (file_size == 0) throw Error("the file is empty (0 bytes)", kReexportFix, where).with_code("file_empty");
  if (!is_supported_image_file(path)) {
    throw Error("unsupported file ending '" + full_extension(path) + "'",
                "use .nii.gz, .nii, .nrrd, .mha, .mhd, .png, .tif, .jpg or .bmp", where);
  }

  // mlseg's own checks first where ITK 5.2 abort()s on bad input: a non-finite NIfTI sform or
  // qform (vnl's SVD), any libpng error (PNGImageIO sets no error handler).
  // A .nii whose header mlseg does not recognise is refused as the ITK-free build refuses it:
  // nifti1_io reads more (e.g. magic "n+2" in a NIfTI-1 header) and aborts on some of it.
  if (is_nifti_file(path)) {
    const auto header = read_nifti_header(path);
    if (!header) {
      throw Error("not a NIfTI-1 or NIfTI-2 file: its sizeof_hdr or magic is wrong", kReexportFix, where)
          .with_code("unreadable_header");
    }
    (void)nifti_geometry(*header, path);
  } else if (lower(full_extension(path)) == ".png") {
    detail::check_png_decodes(path);
  } else if (lower(full_extension(path)) == ".tif" || lower(full_extension(path)) == ".tiff") {
    detail::check_tiff_directories(path);  // ITK's libtiff allocates what a header declares
  }

  OpenedImage opened;
  opened.io = itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::IOFileModeEnum::ReadMode);
  if (!opened.io) {
    throw Error("not a valid " + full_extension(path) +
                    " file: its header cannot be read (corrupt, truncated, or another format "
                    "with this extension)",
                kReexportFix, where).with_code("unreadable_header");
  }
  itk::ImageIOBase& io = *opened.io;
  io.SetFileName(path.string());
  try {
    io.ReadImageInformation();
  } catch (const itk::ExceptionObject& error) {
    throw Error("cannot read the image header: " + itk_reason(error), kReexportFix, where).with_code("unreadable_header");
  }

  const unsigned dims = io.GetNumberOfDimensions();
  const unsigned components = io.GetNumberOfComponents();
  if (dims < 2 || dims > 4) {
    throw Error("the image has " + std::to_string(dims) +
                    " dimensions; mlseg reads 2D, 3D and 4D (one volume per channel) images",
                "store one 2D/3D image per file, or 4D with channels as the 4th dimension", where);
  }
  if (dims == 4 && components > 1) {
    throw Error("4D image with " + std::to_string(components) +
                    "-component pixels: channels would be ambiguous",
                "store channels either as the 4th dimension or as pixel components, not both", where);
  }
  if (components < 1) throw Error("the header declares 0 pixel components", kReexportFix, where);

  std::array<std::int64_t, 4> size{1, 1, 1, 1};  // x, y, z, t
  for (unsigned axis = 0; axis < dims; ++axis) {
    const auto extent = static_cast<long double>(io.GetDimensions(axis));
    if (extent < 1 || extent > static_cast<long double>(options.max_elements)) {
      throw Error("the header declares an impossible size of " +
                      std::to_string(io.GetDimensions(axis)) + " voxels along axis " +
                      std::to_string(axis),
                  kReexportFix, where).with_code("implausible_header");
    }
    size[axis] = static_cast<std::int64_t>(io.GetDimensions(axis));
  }
  // Overflow-safe element count: multiply in long double first and compare to the cap.
  const long double elements = static_cast<long double>(size[0]) * size[1] * size[2] * size[3] *
                               static_cast<long double>(components);
  if (elements > static_cast<long double>(options.max_elements)) {
    std::ostringstream text;
    text << "the header declares " << size[0] << " x " << size[1] << " x " << size[2];
    if (dims == 4) text << " x " << size[3];
    if (components > 1) text << " x " << components << " components";
    text << " = " << static_cast<double>(elements) << " values, above the limit of "
         << options.max_elements << " (a corrupt or hostile header)";
    throw Error(text.str(), std::string(kReexportFix) + "; if the image is truly this large, raise ImageReadOptions::max_elements", where).with_code("implausible_header");
  }
  const auto component_size = static_cast<long double>(io.GetComponentSize());
  const long double pixel_bytes = elements * component_size;
  const std::string ending = lower(full_extension(path));
  const bool detached_header = ending == ".nhdr" || ending == ".mhd";
  if (!detached_header) {
    if (ending == ".nii" && pixel_bytes > static_cast<long double>(file_size)) {
      throw Error("the file is truncated: its header promises " +
                      std::to_string(static_cast<long long>(pixel_bytes)) +
                      " bytes of pixel data but the whole file holds " + std::to_string(file_size),
                  kReexportFix, where).with_code("file_truncated");
    }
    if (pixel_bytes > options.max_compression_ratio * static_cast<long double>(file_size)) {
      throw Error("the header declares " + std::to_string(static_cast<long long>(pixel_bytes)) +
                      " bytes of pixels in a file of " + std::to_string(file_size) +
                      " bytes, beyond any real compression ratio (corrupt or hostile header)",
                  kReexportFix, where).with_code("implausible_header");
    }
  }

  ImageHeader& header = opened.header;
  header.num_dimensions = static_cast<int>(dims);
  header.shape_zyx = {size[2], size[1], size[0]};
  header.num_channels = dims == 4 ? size[3] : components;
  header.component_type = component_name(io.GetComponentType());
  header.floating_point = io.GetComponentType() == ComponentType::FLOAT ||
                          io.GetComponentType() == ComponentType::DOUBLE;
  if (header.component_type == "unknown") {
    throw Error("unsupported pixel component type '" +
                    itk::ImageIOBase::GetComponentTypeAsString(io.GetComponentType()) + "'",
                "convert the image to an integer or float pixel type", where);
  }
  const unsigned spatial = std::min(dims, 3u);
  Geometry& geometry = header.geometry;
  for (unsigned axis = 0; axis < spatial; ++axis) {
    const double spacing = io.GetSpacing(axis);
    if (!std::isfinite(spacing) || spacing <= 0) {
      throw Error("voxel spacing along axis " + std::to_string(axis) + " is " +
                      std::to_string(spacing) + "; spacing must be positive and finite",
                  "fix the header's pixel dimensions (e.g. pixdim in NIfTI)", where);
    }
    geometry.spacing_zyx_mm[2 - axis] = spacing;
    geometry.origin_zyx_mm[2 - axis] = io.GetOrigin(axis);
    const std::vector<double> column = io.GetDirection(axis);
    for (unsigned row = 0; row < spatial; ++row) {
      geometry.direction_zyx[2 - row][2 - axis] = column[row];
    }
  }
  if (ending == ".nii" || ending == ".nii.gz") {
    // NIfTI stores geometry as float32: snap to what the file can hold.
    geometry = detail::snapped_to_float32(geometry);
  }
  opened.num_elements = static_cast<std::int64_t>(elements);
  return opened;
}

StoredType stored_type_of(ComponentType type) {
  switch (type) {
    case ComponentType::UCHAR: return StoredType::uint8;
    case ComponentType::CHAR: return StoredType::int8;
    case ComponentType::USHORT: return StoredType::uint16;
    case ComponentType::SHORT: return StoredType::int16;
    case ComponentType::UINT: return StoredType::uint32;
    case ComponentType::INT: return StoredType::int32;
    case ComponentType::ULONG: return sizeof(unsigned long) == 8 ? StoredType::uint64 : StoredType::uint32;
    case ComponentType::LONG: return sizeof(long) == 8 ? StoredType::int64 : StoredType::int32;
    case ComponentType::ULONGLONG: return StoredType::uint64;
    case ComponentType::LONGLONG: return StoredType::int64;
    case ComponentType::FLOAT: return StoredType::float32;
    case ComponentType::DOUBLE: return StoredType::float64;
    default: throw std::logic_error("unsupported component type");
  }
}

SharedBuffer read_raw_bytes_itk(OpenedImage& opened, const fs::path& path);

// Decodes all pixels in ITK's layout: x fastest, components innermost. Scalar NIfTI is read
// by mlseg's own reader (ITK's nifti1_io zeroes NaN/Inf and zero-fills truncated .nii.gz).
StoredPixels read_stored_pixels(OpenedImage& opened, const fs::path& path) {
  StoredPixels stored;
  stored.interleaved = opened.header.num_dimensions < 4;
  const std::string ending = lower(full_extension(path));
  if ((ending == ".nii" || ending == ".nii.gz") && opened.io->GetNumberOfComponents() == 1) {
    if (auto nifti = detail::read_nifti_stored_pixels(path, opened.num_elements)) return *nifti;
  }
  stored.bytes = read_raw_bytes_itk(opened, path);
  stored.type = stored_type_of(opened.io->GetComponentType());
  return stored;
}

SharedBuffer read_raw_bytes_itk(OpenedImage& opened, const fs::path& path) {
  itk::ImageIOBase& io = *opened.io;
  const unsigned dims = io.GetNumberOfDimensions();
  itk::ImageIORegion region(dims);
  for (unsigned axis = 0; axis < dims; ++axis) {
    region.SetIndex(axis, 0);
    region.SetSize(axis, io.GetDimensions(axis));
  }
  io.SetIORegion(region);
  const std::int64_t bytes = opened.num_elements * static_cast<std::int64_t>(io.GetComponentSize());
  SharedBuffer raw = SharedBuffer::allocate(bytes);
  try {
    io.Read(raw.data);
  } catch (const itk::ExceptionObject& error) {
    throw Error("cannot decode the pixel data (the file is probably truncated or corrupt): " +
                    itk_reason(error),
                kReexportFix, {path.string(), "", ""}).with_code("corrupt_pixel_data");
  }
  return raw;
}

}  // namespace

bool image_io_available() { return true; }

ImageHeader read_image_header(const fs::path& path, const ImageReadOptions& options) {
  return open_image(path, options).header;
}

IntensityPixels read_intensity_pixels(const fs::path& path, const ImageReadOptions& options) {
  OpenedImage opened = open_image(path, options);
  return intensity_pixels_from(read_stored_pixels(opened, path), opened.header);
}

LabelPixels read_label_pixels(const fs::path& path, const ImageReadOptions& options, bool compact) {
  OpenedImage opened = open_image(path, options);
  return label_pixels_from(path, read_stored_pixels(opened, path), opened.header, options, compact);
}

}  // namespace mlseg
