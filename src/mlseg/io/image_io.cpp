#include "mlseg/io/image_io.h"

namespace mlseg {
namespace {

torch::ScalarType label_dtype(LabelValueType type) {
  switch (type) {
    case LabelValueType::uint8: return torch::kUInt8;
    case LabelValueType::int8: return torch::kInt8;
    case LabelValueType::int16: return torch::kInt16;
    case LabelValueType::int64: return torch::kInt64;
  }
  return torch::kInt64;
}

Image label_image(const LabelPixels& pixels) {
  Image image;
  image.geometry = pixels.header.geometry;
  image.data = tensor_from_buffer(pixels.values, pixels.header.channels_first_shape(), label_dtype(pixels.type));
  return image;
}

}  // namespace

Image read_image(const std::filesystem::path& path, const ImageReadOptions& options) {
  const IntensityPixels pixels = read_intensity_pixels(path, options);
  Image image;
  image.geometry = pixels.header.geometry;
  image.data = tensor_from_buffer(pixels.values, pixels.header.channels_first_shape(), torch::kFloat32);
  return image;
}

Image read_label_image(const std::filesystem::path& path, const ImageReadOptions& options) {
  return label_image(read_label_pixels(path, options, /*compact=*/false));
}

Image read_label_image_compact(const std::filesystem::path& path, const ImageReadOptions& options) {
  return label_image(read_label_pixels(path, options, /*compact=*/true));
}

}  // namespace mlseg
