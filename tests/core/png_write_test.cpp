#include "mlseg/core/png_write.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/png_decode.h"
#include "mlseg/core/error.h"
#include "test_support.h"

namespace mlseg {
namespace {

PixelImage gradient(int width, int height, int channels) {
  PixelImage image(width, height, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) image.at(x, y)[c] = static_cast<std::uint8_t>((x * 7 + y * 13 + c * 101) % 256);
    }
  }
  return image;
}

TEST(PngWrite, RgbRoundTripsThroughZlibWithValidChunks) {
  const PixelImage image = gradient(37, 21, 3);
  const std::string png = encode_png(image);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
  const testing::DecodedPng decoded = testing::decode_png(png);  // checks every CRC
  ASSERT_TRUE(decoded.ok) << decoded.problem;
  EXPECT_EQ(decoded.width, 37);
  EXPECT_EQ(decoded.height, 21);
  EXPECT_EQ(decoded.channels, 3);
  EXPECT_EQ(decoded.pixels, image.pixels);
}

TEST(PngWrite, GrayRoundTripsAndCorruptionIsDetected) {
  const PixelImage image = gradient(5, 9, 1);
  std::string png = encode_png(image);
  const testing::DecodedPng decoded = testing::decode_png(png);
  ASSERT_TRUE(decoded.ok) << decoded.problem;
  EXPECT_EQ(decoded.channels, 1);
  EXPECT_EQ(decoded.pixels, image.pixels);
  png[43] = static_cast<char>(png[43] ^ 0x55);  // inside IDAT's data: its CRC no longer matches
  EXPECT_FALSE(testing::decode_png(png).ok);
}

TEST(PngWrite, RejectsWhatPngCannotHold) {
  EXPECT_THROW(encode_png(PixelImage(0, 4, 3)), Error);
  EXPECT_THROW(encode_png(PixelImage(4, 4, 2)), Error);
  PixelImage short_buffer(4, 4, 3);
  short_buffer.pixels.pop_back();
  EXPECT_THROW(encode_png(short_buffer), Error);
}

TEST(PngWrite, FileIsWrittenWholeAndMatchesTheBytes) {
  testing::TempDir dir;
  const PixelImage image = gradient(16, 16, 3);
  const auto path = dir / "sub" / "slice.png";
  write_png(image, path);
  std::ifstream stream(path, std::ios::binary);
  std::stringstream bytes;
  bytes << stream.rdbuf();
  EXPECT_EQ(bytes.str(), encode_png(image));
}

TEST(Base64, Rfc4648VectorsAndDataUri) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
  const std::string uri = png_data_uri(gradient(2, 2, 1));
  EXPECT_EQ(uri.rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u);  // base64 of the PNG signature
}

}  // namespace
}  // namespace mlseg
