// ITK writing of Images (tensor pipeline): the tensor is made contiguous in ITK's layout and
// written through itk::ImageIOBase into a temporary file that is renamed into place.
#include <sstream>
#include <vector>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/itk_support.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

using detail::ComponentType;
using detail::itk_reason;
using detail::lower;
using detail::register_itk_factories;

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
