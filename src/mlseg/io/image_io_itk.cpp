// The only translation unit that sees ITK. It talks to itk::ImageIOBase directly (no templated
// pipeline): the header is read and checked before any pixel memory is allocated, and pixels are
// decoded straight into a buffer we own.
#include <itkBMPImageIOFactory.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>
#include <itkJPEGImageIOFactory.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>
#include <itkPNGImageIOFactory.h>
#include <itkTIFFImageIOFactory.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>
#include <vector>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/nifti_pixels.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

using ComponentType = itk::IOComponentEnum;

constexpr const char* kReexportFix =
    "check that the file opens in a viewer (ITK-SNAP, 3D Slicer); re-export or re-download it";

void register_itk_factories() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::Object::GlobalWarningDisplayOff();
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
    itk::PNGImageIOFactory::RegisterOneFactory();
    itk::TIFFImageIOFactory::RegisterOneFactory();
    itk::JPEGImageIOFactory::RegisterOneFactory();
    itk::BMPImageIOFactory::RegisterOneFactory();
  });
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The first line of an ITK exception's description, without ITK's file/line prefix.
std::string itk_reason(const itk::ExceptionObject& error) {
  std::string text = error.GetDescription();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

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
    // NIfTI stores geometry as float32; digits beyond that are noise from ITK's quaternion
    // arithmetic and would make write(read(file)) drift. Snap to what the file can hold.
    auto snap = [](double value) { return static_cast<double>(static_cast<float>(value)); };
    for (int i = 0; i < 3; ++i) {
      geometry.spacing_zyx_mm[i] = snap(geometry.spacing_zyx_mm[i]);
      geometry.origin_zyx_mm[i] = snap(geometry.origin_zyx_mm[i]);
      for (int j = 0; j < 3; ++j) geometry.direction_zyx[i][j] = snap(geometry.direction_zyx[i][j]);
    }
  }
  opened.num_elements = static_cast<std::int64_t>(elements);
  return opened;
}

// Pixels as stored, ready to convert: raw bytes of `type`, and the scaling still to apply.
struct RawPixels {
  torch::Tensor bytes;
  ComponentType type = ComponentType::UNKNOWNCOMPONENTTYPE;
  bool rescale = false;
  double slope = 1.0;
  double intercept = 0.0;
};

ComponentType nifti_component(int datatype) {
  switch (datatype) {
    case 2: return ComponentType::UCHAR;
    case 256: return ComponentType::CHAR;
    case 4: return ComponentType::SHORT;
    case 512: return ComponentType::USHORT;
    case 8: return ComponentType::INT;
    case 768: return ComponentType::UINT;
    case 16: return ComponentType::FLOAT;
    case 64: return ComponentType::DOUBLE;
    case 1024: return ComponentType::LONGLONG;
    case 1280: return ComponentType::ULONGLONG;
    default: return ComponentType::UNKNOWNCOMPONENTTYPE;
  }
}

torch::Tensor read_raw_bytes_itk(OpenedImage& opened, const fs::path& path);

// Decodes all pixels in ITK's layout: x fastest, components innermost. Scalar NIfTI-1 is read
// by mlseg's own reader (ITK's nifti1_io zeroes NaN/Inf and zero-fills truncated .nii.gz).
RawPixels read_raw_pixels(OpenedImage& opened, const fs::path& path) {
  RawPixels raw;
  const std::string ending = lower(full_extension(path));
  if ((ending == ".nii" || ending == ".nii.gz") && opened.io->GetNumberOfComponents() == 1) {
    if (auto nifti = read_nifti1_pixels(path, opened.num_elements)) {
      raw.bytes = nifti->bytes;
      raw.type = nifti_component(nifti->datatype);
      raw.rescale = nifti->rescale;
      raw.slope = nifti->slope;
      raw.intercept = nifti->intercept;
      return raw;
    }
  }
  raw.bytes = read_raw_bytes_itk(opened, path);
  raw.type = opened.io->GetComponentType();
  return raw;
}

torch::Tensor read_raw_bytes_itk(OpenedImage& opened, const fs::path& path) {
  itk::ImageIOBase& io = *opened.io;
  const unsigned dims = io.GetNumberOfDimensions();
  itk::ImageIORegion region(dims);
  for (unsigned axis = 0; axis < dims; ++axis) {
    region.SetIndex(axis, 0);
    region.SetSize(axis, io.GetDimensions(axis));
  }
  io.SetIORegion(region);
  const std::int64_t bytes = opened.num_elements * static_cast<std::int64_t>(io.GetComponentSize());
  torch::Tensor raw = torch::empty({bytes}, torch::kUInt8);
  try {
    io.Read(raw.data_ptr());
  } catch (const itk::ExceptionObject& error) {
    throw Error("cannot decode the pixel data (the file is probably truncated or corrupt): " +
                    itk_reason(error),
                kReexportFix, {path.string(), "", ""}).with_code("corrupt_pixel_data");
  }
  return raw;
}

// Copies pixels from ITK's layout into [C, Z, Y, X], converting each value with `convert`.
template <typename Source, typename Target, typename Convert>
void copy_to_channels_first(const torch::Tensor& raw, const ImageHeader& header, bool interleaved,
                            Target* target, Convert convert) {
  const auto* source = reinterpret_cast<const Source*>(raw.data_ptr());
  const std::int64_t channels = header.num_channels;
  const std::int64_t voxels = header.shape_zyx[0] * header.shape_zyx[1] * header.shape_zyx[2];
  if (!interleaved || channels == 1) {
    for (std::int64_t i = 0; i < voxels * channels; ++i) target[i] = convert(source[i], i);
    return;
  }
  for (std::int64_t voxel = 0; voxel < voxels; ++voxel) {
    for (std::int64_t channel = 0; channel < channels; ++channel) {
      const std::int64_t index = voxel * channels + channel;
      target[channel * voxels + voxel] = convert(source[index], index);
    }
  }
}

template <typename Function>
void dispatch_component(ComponentType type, Function&& function) {
  switch (type) {
    case ComponentType::UCHAR: return function(std::uint8_t{});
    case ComponentType::CHAR: return function(std::int8_t{});
    case ComponentType::USHORT: return function(std::uint16_t{});
    case ComponentType::SHORT: return function(std::int16_t{});
    case ComponentType::UINT: return function(std::uint32_t{});
    case ComponentType::INT: return function(std::int32_t{});
    case ComponentType::ULONG: return function(static_cast<unsigned long>(0));
    case ComponentType::LONG: return function(static_cast<long>(0));
    case ComponentType::ULONGLONG: return function(static_cast<unsigned long long>(0));
    case ComponentType::LONGLONG: return function(static_cast<long long>(0));
    case ComponentType::FLOAT: return function(float{});
    case ComponentType::DOUBLE: return function(double{});
    default: throw std::logic_error("unsupported component type");
  }
}

std::vector<std::int64_t> tensor_shape(const ImageHeader& header) {
  return {header.num_channels, header.shape_zyx[0], header.shape_zyx[1], header.shape_zyx[2]};
}

// "voxel (z=3, y=10, x=7)" for a flat index in ITK's layout.
std::string describe_voxel(std::int64_t index, const ImageHeader& header, bool interleaved) {
  const std::int64_t channels = header.num_channels;
  const std::int64_t x_size = header.shape_zyx[2], y_size = header.shape_zyx[1],
                     z_size = header.shape_zyx[0];
  std::int64_t channel = 0;
  if (interleaved) {
    channel = index % channels;
    index /= channels;
  } else {
    channel = index / (x_size * y_size * z_size);
    index %= x_size * y_size * z_size;
  }
  const std::int64_t x = index % x_size, y = (index / x_size) % y_size, z = index / (x_size * y_size);
  std::string text = "voxel (z=" + std::to_string(z) + ", y=" + std::to_string(y) +
                     ", x=" + std::to_string(x) + ")";
  if (channels > 1) text += " of volume " + std::to_string(channel);
  return text;
}

ComponentType component_for(torch::ScalarType type) {
  switch (type) {
    case torch::kUInt8: return ComponentType::UCHAR;
    case torch::kInt8: return ComponentType::CHAR;
    case torch::kInt16: return ComponentType::SHORT;
    case torch::kInt32: return ComponentType::INT;
    case torch::kInt64: return ComponentType::LONGLONG;
    case torch::kFloat32: return ComponentType::FLOAT;
    case torch::kFloat64: return ComponentType::DOUBLE;
    case torch::kBool: return ComponentType::UCHAR;
    default: return ComponentType::UNKNOWNCOMPONENTTYPE;
  }
}

}  // namespace

bool image_io_available() { return true; }

ImageHeader read_image_header(const fs::path& path, const ImageReadOptions& options) {
  return open_image(path, options).header;
}

Image read_image(const fs::path& path, const ImageReadOptions& options) {
  OpenedImage opened = open_image(path, options);
  const RawPixels raw = read_raw_pixels(opened, path);
  const ImageHeader& header = opened.header;
  const bool interleaved = header.num_dimensions < 4;
  Image image;
  image.geometry = header.geometry;
  image.data = torch::empty(tensor_shape(header), torch::kFloat32);
  float* target = image.data.data_ptr<float>();
  dispatch_component(raw.type, [&](auto tag) {
    using Source = decltype(tag);
    if (raw.rescale) {
      copy_to_channels_first<Source>(raw.bytes, header, interleaved, target, [&](Source value, std::int64_t) {
        return static_cast<float>(static_cast<double>(value) * raw.slope + raw.intercept);
      });
    } else {
      copy_to_channels_first<Source>(raw.bytes, header, interleaved, target,
                                     [](Source value, std::int64_t) { return static_cast<float>(value); });
    }
  });
  return image;
}

Image read_label_image(const fs::path& path, const ImageReadOptions& options) {
  OpenedImage opened = open_image(path, options);
  RawPixels raw = read_raw_pixels(opened, path);
  if (raw.rescale) {
    // Scaled labels (e.g. a mask stored with slope 0.99999997): apply, then check integrality.
    torch::Tensor values = torch::empty({opened.num_elements}, torch::kFloat64);
    double* scaled = values.data_ptr<double>();
    dispatch_component(raw.type, [&](auto tag) {
      using Source = decltype(tag);
      const auto* source = reinterpret_cast<const Source*>(raw.bytes.data_ptr());
      for (std::int64_t i = 0; i < opened.num_elements; ++i) {
        scaled[i] = static_cast<double>(source[i]) * raw.slope + raw.intercept;
      }
    });
    raw.bytes = values.view(torch::kUInt8);
    raw.type = ComponentType::DOUBLE;
  }
  const ImageHeader& header = opened.header;
  const bool interleaved = header.num_dimensions < 4;
  Image image;
  image.geometry = header.geometry;
  image.data = torch::empty(tensor_shape(header), torch::kInt64);
  auto* target = image.data.data_ptr<std::int64_t>();

  // First non-integral value seen (float-stored labels), reported after the copy.
  bool bad_value = false;
  double bad = 0;
  std::int64_t bad_index = 0;
  const double tolerance = options.label_integer_tolerance;
  dispatch_component(raw.type, [&](auto tag) {
    using Source = decltype(tag);
    if constexpr (std::is_floating_point_v<Source>) {
      copy_to_channels_first<Source>(raw.bytes, header, interleaved, target, [&](Source value, std::int64_t index) {
        const double rounded = std::nearbyint(static_cast<double>(value));
        if (!(std::abs(static_cast<double>(value) - rounded) <= tolerance) ||
            std::abs(rounded) > 9.0e18) {
          if (!bad_value) {
            bad_value = true;
            bad = static_cast<double>(value);
            bad_index = index;
          }
          return std::int64_t{0};
        }
        return static_cast<std::int64_t>(rounded);
      });
    } else if constexpr (std::is_same_v<Source, unsigned long long> ||
                         (std::is_same_v<Source, unsigned long> && sizeof(unsigned long) == 8)) {
      // Bitmask labels may use all 64 bits: keep the bit pattern.
      copy_to_channels_first<Source>(raw.bytes, header, interleaved, target, [](Source value, std::int64_t) {
        return static_cast<std::int64_t>(value);
      });
    } else {
      copy_to_channels_first<Source>(raw.bytes, header, interleaved, target, [](Source value, std::int64_t) {
        return static_cast<std::int64_t>(value);
      });
    }
  });
  if (bad_value) {
    std::ostringstream text;
    text << "label values must be integers, but " << describe_voxel(bad_index, header, interleaved)
         << " holds " << bad << " (stored as " << header.component_type << ")";
    throw Error(text.str(),
                "export the label map with integer values (nearest-neighbour resampling, no "
                "scaling); is this an image file in the labels folder?",
                {path.string(), "", ""})
        .with_code("label_not_integer");
  }
  return image;
}

Image read_label_image_compact(const fs::path& path, const ImageReadOptions& options) {
  OpenedImage opened = open_image(path, options);
  RawPixels raw = read_raw_pixels(opened, path);
  const ImageHeader& header = opened.header;
  const bool planar = header.num_channels == 1 || header.num_dimensions == 4;
  torch::ScalarType dtype = torch::kInt64;
  if (raw.type == ComponentType::UCHAR) dtype = torch::kUInt8;
  if (raw.type == ComponentType::CHAR) dtype = torch::kInt8;
  if (raw.type == ComponentType::SHORT) dtype = torch::kInt16;
  if (raw.rescale || !planar || dtype == torch::kInt64) return read_label_image(path, options);
  Image image;
  image.geometry = header.geometry;
  // The decoded bytes already are the label map, in [C, Z, Y, X] order: view them, no copy.
  torch::Tensor bytes = raw.bytes;
  if (bytes.storage_offset() % torch::elementSize(dtype) != 0) bytes = bytes.clone();  // odd vox_offset
  image.data = bytes.view(dtype).reshape(tensor_shape(header));
  return image;
}

void write_image(const Image& image, const fs::path& path, const ImageWriteOptions& options) {
  register_itk_factories();
  const ErrorLocation where{path.string(), "", ""};
  if (!image.data.defined() || image.data.dim() != 4) {
    throw Error("an image to write must be a [C, Z, Y, X] tensor", "this is a bug in the caller", where);
  }
  if (!is_supported_image_file(path)) {
    throw Error("unsupported file ending '" + full_extension(path) + "'",
                "use .nii.gz, .nii, .nrrd, .mha, .png, .tif, .jpg or .bmp", where);
  }
  const std::string ending = lower(full_extension(path));
  const bool flat_format = is_2d_image_format(ending);
  const std::int64_t channels = image.data.size(0), z = image.data.size(1),
                     y = image.data.size(2), x = image.data.size(3);
  torch::Tensor data = image.data.cpu();
  if (data.scalar_type() == torch::kBool) data = data.to(torch::kUInt8);

  unsigned dims = 3;
  unsigned components = 1;
  itk::IOPixelEnum pixel = itk::IOPixelEnum::SCALAR;
  if (flat_format) {
    if (z != 1) {
      throw Error("a " + ending + " file holds one 2D slice but the image has " +
                      std::to_string(z) + " slices",
                  "write 3D images as .nii.gz, .nrrd or .mha", where);
    }
    if (channels > 4) {
      throw Error("a " + ending + " file holds at most 4 channels, the image has " +
                      std::to_string(channels),
                  "write one file per channel, or use .nii.gz", where);
    }
    if (data.scalar_type() != torch::kUInt8) {
      const bool fits = data.numel() == 0 ||
                        (data.min().item<double>() >= 0 && data.max().item<double>() <= 255 &&
                         torch::equal(data, data.round()));
      if (!fits) {
        throw Error("a " + ending + " file holds 8-bit integers; the image has other values",
                    "scale to 0..255 first, or write .nii.gz / .tif", where);
      }
      data = data.to(torch::kUInt8);
    }
    dims = 2;
    components = static_cast<unsigned>(channels);
    pixel = channels == 3 ? itk::IOPixelEnum::RGB
                          : channels == 4 ? itk::IOPixelEnum::RGBA
                                          : channels == 1 ? itk::IOPixelEnum::SCALAR
                                                          : itk::IOPixelEnum::VECTOR;
    data = data.permute({1, 2, 3, 0});  // components innermost
  } else if (channels > 1) {
    dims = 4;
  }
  data = data.contiguous();
  const ComponentType component = component_for(data.scalar_type());
  if (component == ComponentType::UNKNOWNCOMPONENTTYPE) {
    throw Error(std::string("cannot store tensors of type ") + c10::toString(data.scalar_type()),
                "convert to uint8, int16, int32, int64, float32 or float64", where);
  }

  AtomicOutput output(path);
  itk::ImageIOBase::Pointer io =
      itk::ImageIOFactory::CreateImageIO(output.temp_path().c_str(), itk::IOFileModeEnum::WriteMode);
  if (!io) throw Error("no image writer for '" + ending + "'", "use .nii.gz", where);
  io->SetNumberOfDimensions(dims);
  const std::array<std::int64_t, 4> size{x, y, z, channels};
  const unsigned spatial = std::min(dims, 3u);
  for (unsigned axis = 0; axis < dims; ++axis) {
    io->SetDimensions(axis, static_cast<unsigned>(size[axis]));
    const bool is_spatial = axis < spatial;
    io->SetSpacing(axis, is_spatial ? image.geometry.spacing_zyx_mm[2 - axis] : 1.0);
    io->SetOrigin(axis, is_spatial ? image.geometry.origin_zyx_mm[2 - axis] : 0.0);
    std::vector<double> column(dims, 0.0);
    for (unsigned row = 0; row < dims; ++row) {
      if (is_spatial && row < spatial) {
        column[row] = image.geometry.direction_zyx[2 - row][2 - axis];
      } else {
        column[row] = row == axis ? 1.0 : 0.0;
      }
    }
    io->SetDirection(axis, column);
  }
  io->SetComponentType(component);
  io->SetPixelType(pixel);
  io->SetNumberOfComponents(components);
  io->SetUseCompression(options.compress);
  io->SetFileName(output.temp_path().string());
  itk::ImageIORegion region(dims);
  for (unsigned axis = 0; axis < dims; ++axis) {
    region.SetIndex(axis, 0);
    region.SetSize(axis, static_cast<itk::SizeValueType>(size[axis]));
  }
  io->SetIORegion(region);
  try {
    io->WriteImageInformation();
    io->Write(data.data_ptr());
  } catch (const itk::ExceptionObject& error) {
    throw Error("cannot write the image: " + itk_reason(error),
                "check that the folder is writable and the disk is not full", where);
  }
  output.commit();
}

}  // namespace mlseg
