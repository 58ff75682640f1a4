#include "mlseg/io/pixel_convert.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "mlseg/core/error.h"

namespace mlseg::detail {
namespace {

std::int64_t element_count(const ImageHeader& header) {
  return header.num_channels * header.shape_zyx[0] * header.shape_zyx[1] * header.shape_zyx[2];
}

template <typename Function>
void dispatch_stored(StoredType type, Function&& function) {
  switch (type) {
    case StoredType::uint8: return function(std::uint8_t{});
    case StoredType::int8: return function(std::int8_t{});
    case StoredType::uint16: return function(std::uint16_t{});
    case StoredType::int16: return function(std::int16_t{});
    case StoredType::uint32: return function(std::uint32_t{});
    case StoredType::int32: return function(std::int32_t{});
    case StoredType::uint64: return function(std::uint64_t{});
    case StoredType::int64: return function(std::int64_t{});
    case StoredType::float32: return function(float{});
    case StoredType::float64: return function(double{});
  }
  throw std::logic_error("unhandled stored type");
}

// Copies values into [C, Z, Y, X], converting each with `convert(value, flat index as stored)`.
template <typename Source, typename Target, typename Convert>
void copy_to_channels_first(const StoredPixels& stored, const ImageHeader& header, Target* target, Convert convert) {
  const auto* source = stored.bytes.as<const Source>();
  const std::int64_t channels = header.num_channels;
  const std::int64_t voxels = header.shape_zyx[0] * header.shape_zyx[1] * header.shape_zyx[2];
  if (!stored.interleaved || channels == 1) {
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

// "voxel (z=3, y=10, x=7)" for a flat index as stored.
std::string describe_voxel(std::int64_t index, const ImageHeader& header, bool interleaved) {
  const std::int64_t channels = header.num_channels;
  const std::int64_t x_size = header.shape_zyx[2], y_size = header.shape_zyx[1], z_size = header.shape_zyx[0];
  std::int64_t channel = 0;
  if (interleaved) {
    channel = index % channels;
    index /= channels;
  } else {
    channel = index / (x_size * y_size * z_size);
    index %= x_size * y_size * z_size;
  }
  const std::int64_t x = index % x_size, y = (index / x_size) % y_size, z = index / (x_size * y_size);
  std::string text = "voxel (z=" + std::to_string(z) + ", y=" + std::to_string(y) + ", x=" + std::to_string(x) + ")";
  if (channels > 1) text += " of volume " + std::to_string(channel);
  return text;
}

// Labels widened to int64 [C, Z, Y, X] (float-stored ones checked for integrality).
LabelPixels int64_labels(const std::filesystem::path& path, StoredPixels stored, const ImageHeader& header,
                         const ImageReadOptions& options) {
  const std::int64_t count = element_count(header);
  if (stored.rescale) {
    // Scaled labels (e.g. a mask stored with slope 0.99999997): apply, then check integrality.
    SharedBuffer values = SharedBuffer::allocate(count * static_cast<std::int64_t>(sizeof(double)));
    double* scaled = values.as<double>();
    dispatch_stored(stored.type, [&](auto tag) {
      using Source = decltype(tag);
      const auto* source = stored.bytes.as<const Source>();
      for (std::int64_t i = 0; i < count; ++i) scaled[i] = static_cast<double>(source[i]) * stored.slope + stored.intercept;
    });
    stored.bytes = values;
    stored.type = StoredType::float64;
    stored.rescale = false;
  }
  LabelPixels image;
  image.header = header;
  image.type = LabelValueType::int64;
  image.values = SharedBuffer::allocate(count * static_cast<std::int64_t>(sizeof(std::int64_t)));
  auto* target = image.values.as<std::int64_t>();

  // First non-integral value seen (float-stored labels), reported after the copy.
  bool bad_value = false;
  double bad = 0;
  std::int64_t bad_index = 0;
  const double tolerance = options.label_integer_tolerance;
  dispatch_stored(stored.type, [&](auto tag) {
    using Source = decltype(tag);
    if constexpr (std::is_floating_point_v<Source>) {
      copy_to_channels_first<Source>(stored, header, target, [&](Source value, std::int64_t index) {
        const double rounded = std::nearbyint(static_cast<double>(value));
        if (!(std::abs(static_cast<double>(value) - rounded) <= tolerance) || std::abs(rounded) > 9.0e18) {
          if (!bad_value) {
            bad_value = true;
            bad = static_cast<double>(value);
            bad_index = index;
          }
          return std::int64_t{0};
        }
        return static_cast<std::int64_t>(rounded);
      });
    } else {
      // uint64 bitmask labels may use all 64 bits: the bit pattern is kept.
      copy_to_channels_first<Source>(stored, header, target,
                                     [](Source value, std::int64_t) { return static_cast<std::int64_t>(value); });
    }
  });
  if (bad_value) {
    std::ostringstream text;
    text << "label values must be integers, but " << describe_voxel(bad_index, header, stored.interleaved) << " holds "
         << bad << " (stored as " << header.component_type << ")";
    throw Error(text.str(),
                "export the label map with integer values (nearest-neighbour resampling, no scaling); is this an image "
                "file in the labels folder?",
                {path.string(), "", ""})
        .with_code("label_not_integer");
  }
  return image;
}

}  // namespace

std::string stored_type_name(StoredType type) {
  switch (type) {
    case StoredType::uint8: return "uint8";
    case StoredType::int8: return "int8";
    case StoredType::uint16: return "uint16";
    case StoredType::int16: return "int16";
    case StoredType::uint32: return "uint32";
    case StoredType::int32: return "int32";
    case StoredType::uint64: return "uint64";
    case StoredType::int64: return "int64";
    case StoredType::float32: return "float32";
    case StoredType::float64: return "float64";
  }
  return "unknown";
}

int stored_type_bytes(StoredType type) {
  int bytes = 0;
  dispatch_stored(type, [&](auto tag) { bytes = static_cast<int>(sizeof(tag)); });
  return bytes;
}

Geometry snapped_to_float32(Geometry geometry) {
  auto snap = [](double value) { return static_cast<double>(static_cast<float>(value)); };
  for (int i = 0; i < 3; ++i) {
    geometry.spacing_zyx_mm[i] = snap(geometry.spacing_zyx_mm[i]);
    geometry.origin_zyx_mm[i] = snap(geometry.origin_zyx_mm[i]);
    for (int j = 0; j < 3; ++j) geometry.direction_zyx[i][j] = snap(geometry.direction_zyx[i][j]);
  }
  return geometry;
}

IntensityPixels intensity_pixels_from(const StoredPixels& stored, const ImageHeader& header) {
  IntensityPixels image;
  image.header = header;
  image.values = SharedBuffer::allocate(element_count(header) * static_cast<std::int64_t>(sizeof(float)));
  float* target = image.values.as<float>();
  dispatch_stored(stored.type, [&](auto tag) {
    using Source = decltype(tag);
    if (stored.rescale) {
      copy_to_channels_first<Source>(stored, header, target, [&](Source value, std::int64_t) {
        return static_cast<float>(static_cast<double>(value) * stored.slope + stored.intercept);
      });
    } else {
      copy_to_channels_first<Source>(stored, header, target, [](Source value, std::int64_t) { return static_cast<float>(value); });
    }
  });
  return image;
}

LabelPixels label_pixels_from(const std::filesystem::path& path, StoredPixels stored, const ImageHeader& header,
                              const ImageReadOptions& options, bool compact) {
  const bool planar = header.num_channels == 1 || !stored.interleaved;
  std::optional<LabelValueType> kept;
  if (stored.type == StoredType::uint8) kept = LabelValueType::uint8;
  if (stored.type == StoredType::int8) kept = LabelValueType::int8;
  if (stored.type == StoredType::int16) kept = LabelValueType::int16;
  if (!compact || stored.rescale || !planar || !kept) return int64_labels(path, std::move(stored), header, options);
  // The decoded bytes already are the label map, in [C, Z, Y, X] order: keep them, no copy.
  LabelPixels pixels;
  pixels.header = header;
  pixels.type = *kept;
  pixels.values = stored.bytes;
  const int element = label_value_bytes(*kept);
  if (reinterpret_cast<std::uintptr_t>(pixels.values.data) % static_cast<std::uintptr_t>(element) != 0) {
    pixels.values = SharedBuffer::allocate(stored.bytes.size);  // odd vox_offset: realign
    std::memcpy(pixels.values.data, stored.bytes.data, static_cast<std::size_t>(stored.bytes.size));
  }
  return pixels;
}

}  // namespace mlseg::detail
