#pragma once
// A minimal PNG reader for tests (8-bit gray, RGB, RGBA; non-interlaced): checks signature and
// chunk CRCs, inflates with zlib and undoes the row filters. Enough to check the project's own
// PNGs and a browser's screenshots.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace mlseg::testing {

struct DecodedPng {
  bool ok = false;
  std::string problem;
  int width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t> pixels;  ///< width * height * channels
};

inline std::uint32_t png_u32(const std::string& bytes, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[at + 3]));
}

inline DecodedPng decode_png(const std::string& bytes) {
  DecodedPng out;
  if (bytes.size() < 8 || bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) {
    out.problem = "no PNG signature";
    return out;
  }
  std::string idat;
  int bit_depth = 0, colour_type = -1, interlace = 0;
  bool ended = false;
  for (std::size_t at = 8; at + 12 <= bytes.size();) {
    const std::uint32_t length = png_u32(bytes, at);
    if (at + 12 + length > bytes.size()) {
      out.problem = "chunk runs past the end";
      return out;
    }
    const std::string type = bytes.substr(at + 4, 4);
    const std::uint32_t crc = png_u32(bytes, at + 8 + length);
    const uLong computed = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data() + at + 4), length + 4);
    if (computed != crc) {
      out.problem = "bad CRC in chunk " + type;
      return out;
    }
    const std::string data = bytes.substr(at + 8, length);
    if (type == "IHDR") {
      out.width = static_cast<int>(png_u32(data, 0));
      out.height = static_cast<int>(png_u32(data, 4));
      bit_depth = static_cast<std::uint8_t>(data[8]);
      colour_type = static_cast<std::uint8_t>(data[9]);
      interlace = static_cast<std::uint8_t>(data[12]);
    } else if (type == "IDAT") {
      idat += data;
    } else if (type == "IEND") {
      ended = true;
      break;
    }
    at += 12 + length;
  }
  if (!ended) {
    out.problem = "no IEND chunk";
    return out;
  }
  out.channels = colour_type == 0 ? 1 : colour_type == 2 ? 3 : colour_type == 6 ? 4 : colour_type == 4 ? 2 : 0;
  if (bit_depth != 8 || out.channels == 0 || interlace != 0) {
    out.problem = "unsupported PNG (bit depth " + std::to_string(bit_depth) + ", colour type " + std::to_string(colour_type) + ")";
    return out;
  }
  const std::size_t row_bytes = static_cast<std::size_t>(out.width) * out.channels;
  std::string raw((row_bytes + 1) * out.height, '\0');
  uLongf raw_size = static_cast<uLongf>(raw.size());
  if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_size, reinterpret_cast<const Bytef*>(idat.data()),
                 static_cast<uLong>(idat.size())) != Z_OK ||
      raw_size != raw.size()) {
    out.problem = "IDAT does not inflate to the image size";
    return out;
  }
  out.pixels.assign(row_bytes * out.height, 0);
  const std::size_t bpp = static_cast<std::size_t>(out.channels);
  for (int y = 0; y < out.height; ++y) {
    const auto filter = static_cast<std::uint8_t>(raw[(row_bytes + 1) * y]);
    const auto* in = reinterpret_cast<const std::uint8_t*>(raw.data()) + (row_bytes + 1) * y + 1;
    std::uint8_t* row = out.pixels.data() + row_bytes * y;
    const std::uint8_t* above = y > 0 ? row - row_bytes : nullptr;
    for (std::size_t i = 0; i < row_bytes; ++i) {
      const int a = i >= bpp ? row[i - bpp] : 0;
      const int b = above ? above[i] : 0;
      const int c = above && i >= bpp ? above[i - bpp] : 0;
      int predicted = 0;
      switch (filter) {
        case 0: predicted = 0; break;
        case 1: predicted = a; break;
        case 2: predicted = b; break;
        case 3: predicted = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: out.problem = "bad filter type " + std::to_string(filter); return out;
      }
      row[i] = static_cast<std::uint8_t>(in[i] + predicted);
    }
  }
  out.ok = true;
  return out;
}

}  // namespace mlseg::testing
