#pragma once
// PNG encoding (8-bit gray or RGB, zlib-compressed) for images the project draws itself, and
// base64 for embedding them in a self-contained HTML page.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mlseg {

/// Row-major 8-bit pixels, `channels` interleaved values per pixel (1 = gray, 3 = RGB).
struct PixelImage {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<std::uint8_t> pixels;  ///< width * height * channels

  PixelImage() = default;
  PixelImage(int width_px, int height_px, int num_channels)
      : width(width_px), height(height_px), channels(num_channels),
        pixels(static_cast<std::size_t>(width_px) * height_px * num_channels, 0) {}
  std::uint8_t* at(int x, int y) { return pixels.data() + (static_cast<std::size_t>(y) * width + x) * channels; }
  const std::uint8_t* at(int x, int y) const {
    return pixels.data() + (static_cast<std::size_t>(y) * width + x) * channels;
  }
};

/// The PNG file's bytes. Throws mlseg::Error for an empty image, channels other than 1 or 3, or
/// a pixel buffer of the wrong size.
std::string encode_png(const PixelImage& image);

/// encode_png written atomically to `path` (parent folders created).
void write_png(const PixelImage& image, const std::filesystem::path& path);

/// Standard base64 (RFC 4648, with padding).
std::string base64_encode(std::string_view bytes);

/// "data:image/png;base64,..." for an <img src>.
std::string png_data_uri(const PixelImage& image);

}  // namespace mlseg
