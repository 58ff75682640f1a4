#include "mlseg/core/png_write.h"

#include <zlib.h>

#include <array>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"

namespace mlseg {

namespace {

void append_u32(std::string& out, std::uint32_t value) {
  out += static_cast<char>((value >> 24) & 0xff);
  out += static_cast<char>((value >> 16) & 0xff);
  out += static_cast<char>((value >> 8) & 0xff);
  out += static_cast<char>(value & 0xff);
}

void append_chunk(std::string& out, const char (&type)[5], const std::string& data) {
  append_u32(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t type_start = out.size();
  out.append(type, 4);
  out += data;
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + type_start), static_cast<uInt>(data.size() + 4));
  append_u32(out, static_cast<std::uint32_t>(crc));
}

}  // namespace

std::string encode_png(const PixelImage& image) {
  if (image.width <= 0 || image.height <= 0) {
    throw Error("cannot encode an empty " + std::to_string(image.width) + " x " + std::to_string(image.height) +
                    " image as PNG",
                "give the image at least one pixel");
  }
  if (image.channels != 1 && image.channels != 3) {
    throw Error("PNG writer supports 1 (gray) or 3 (RGB) channels, not " + std::to_string(image.channels),
                "convert the image to gray or RGB first");
  }
  const std::size_t row_bytes = static_cast<std::size_t>(image.width) * image.channels;
  if (image.pixels.size() != row_bytes * image.height) {
    throw Error("PNG pixel buffer holds " + std::to_string(image.pixels.size()) + " bytes, expected " +
                    std::to_string(row_bytes * image.height),
                "fill width * height * channels bytes");
  }

  // Each row is prefixed by its filter type; "Up" (2) suits smooth medical slices and overlays.
  std::string filtered;
  filtered.reserve((row_bytes + 1) * image.height);
  for (int y = 0; y < image.height; ++y) {
    const std::uint8_t* row = image.pixels.data() + row_bytes * y;
    const std::uint8_t* above = y > 0 ? row - row_bytes : nullptr;
    filtered += static_cast<char>(above ? 2 : 0);
    for (std::size_t i = 0; i < row_bytes; ++i) {
      filtered += static_cast<char>(above ? static_cast<std::uint8_t>(row[i] - above[i]) : row[i]);
    }
  }
  uLongf compressed_size = compressBound(static_cast<uLong>(filtered.size()));
  std::string compressed(compressed_size, '\0');
  const int status = compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressed_size,
                               reinterpret_cast<const Bytef*>(filtered.data()), static_cast<uLong>(filtered.size()),
                               Z_BEST_COMPRESSION);
  if (status != Z_OK) {
    throw Error("zlib failed to compress PNG data (status " + std::to_string(status) + ")",
                "this is a bug or an out-of-memory condition; report it with the image size");
  }
  compressed.resize(compressed_size);

  std::string png = "\x89PNG\r\n\x1a\n";
  std::string header;
  append_u32(header, static_cast<std::uint32_t>(image.width));
  append_u32(header, static_cast<std::uint32_t>(image.height));
  header += static_cast<char>(8);                          // bit depth
  header += static_cast<char>(image.channels == 3 ? 2 : 0);  // colour type: RGB or gray
  header += std::string(3, '\0');                          // deflate, adaptive filtering, no interlace
  append_chunk(png, "IHDR", header);
  append_chunk(png, "IDAT", compressed);
  append_chunk(png, "IEND", "");
  return png;
}

void write_png(const PixelImage& image, const std::filesystem::path& path) {
  write_text_file_atomically(path, encode_png(image));
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t triple = (static_cast<std::uint8_t>(bytes[i]) << 16) |
                                 (static_cast<std::uint8_t>(bytes[i + 1]) << 8) | static_cast<std::uint8_t>(bytes[i + 2]);
    out += kAlphabet[(triple >> 18) & 63];
    out += kAlphabet[(triple >> 12) & 63];
    out += kAlphabet[(triple >> 6) & 63];
    out += kAlphabet[triple & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t triple = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (rest == 2) triple |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[(triple >> 18) & 63];
    out += kAlphabet[(triple >> 12) & 63];
    out += rest == 2 ? kAlphabet[(triple >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string png_data_uri(const PixelImage& image) { return "data:image/png;base64," + base64_encode(encode_png(image)); }

}  // namespace mlseg
