#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "mlseg/core/error.h"
#include "mlseg/io/image_io.h"
#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;

// An oblique, anisotropic, off-origin grid: every geometry field non-trivial.
Geometry oblique_geometry() {
  Geometry geometry;
  geometry.spacing_zyx_mm = {2.5, 0.75, 0.625};  // float32-exact, as NIfTI stores them
  geometry.origin_zyx_mm = {-12.25, 31.5, 7.75};
  const double angle = 0.3;
  // A rotation about the index z axis, written in zyx order.
  geometry.direction_zyx = {{{1, 0, 0}, {0, std::cos(angle), std::sin(angle)}, {0, -std::sin(angle), std::cos(angle)}}};
  return geometry;
}

void expect_geometry_near(const Geometry& a, const Geometry& b, double tolerance) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(a.spacing_zyx_mm[i], b.spacing_zyx_mm[i], tolerance);
    EXPECT_NEAR(a.origin_zyx_mm[i], b.origin_zyx_mm[i], tolerance);
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(a.direction_zyx[i][j], b.direction_zyx[i][j], tolerance);
  }
}

class ImageRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(ImageRoundTrip, GeometryAndValuesSurviveWriteThenRead) {
  testing::TempDir dir;
  const fs::path path = dir / ("image" + GetParam());
  Image image;
  image.geometry = oblique_geometry();
  image.data = torch::arange(4 * 5 * 6, torch::kFloat32).reshape({1, 4, 5, 6}) * 0.5f - 3.0f;
  write_image(image, path);
  const Image first = read_image(path);
  // Axis-aligned geometry round-trips exactly in every format.
  Image aligned = image;
  aligned.geometry.direction_zyx = Geometry{}.direction_zyx;
  aligned.geometry.direction_zyx[2][2] = -1;
  write_image(aligned, dir / ("aligned" + GetParam()));
  const Image aligned_back = read_image(dir / ("aligned" + GetParam()));
  EXPECT_EQ(aligned_back.geometry, aligned.geometry);
  EXPECT_EQ(first.data.sizes(), image.data.sizes());
  EXPECT_TRUE(torch::allclose(first.data, image.data));
  expect_geometry_near(first.geometry, image.geometry, 1e-5);
  // Exact round trip from what the file holds.
  write_image(first, dir / ("again" + GetParam()));
  const Image second = read_image(dir / ("again" + GetParam()));
  // NIfTI keeps an oblique direction as a float32 quaternion: exact up to float32 rounding.
  // Every other format, and every axis-aligned NIfTI, round-trips bit for bit.
  const bool nifti = GetParam().rfind(".nii", 0) == 0;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      if (nifti) {
        EXPECT_NEAR(second.geometry.direction_zyx[i][j], first.geometry.direction_zyx[i][j], 1e-7) << i << j;
      } else {
        EXPECT_EQ(second.geometry.direction_zyx[i][j], first.geometry.direction_zyx[i][j]) << i << j;
      }
    }
  }
  EXPECT_EQ(second.geometry.spacing_zyx_mm, first.geometry.spacing_zyx_mm);
  EXPECT_EQ(second.geometry.origin_zyx_mm, first.geometry.origin_zyx_mm);
  EXPECT_TRUE(torch::equal(second.data, first.data));
}

INSTANTIATE_TEST_SUITE_P(Formats, ImageRoundTrip, ::testing::Values(".nii.gz", ".nii", ".nrrd", ".mha"),
                         [](const auto& info) {
                           std::string name = info.param.substr(1);
                           for (auto& c : name) if (c == '.') c = '_';
                           return name;
                         });

TEST(ImageIo, IntegerLabelsKeepTheirTypeAndValues) {
  testing::TempDir dir;
  for (auto dtype : {torch::kUInt8, torch::kInt16, torch::kInt32, torch::kInt64}) {
    Image label;
    label.data = torch::tensor({0, 1, 2, 100}, torch::kInt64).reshape({1, 1, 2, 2}).to(dtype);
    write_image(label, dir / "label.nii.gz");
    const ImageHeader header = read_image_header(dir / "label.nii.gz");
    EXPECT_FALSE(header.floating_point);
    const Image back = read_label_image(dir / "label.nii.gz");
    EXPECT_EQ(back.data.scalar_type(), torch::kInt64);
    EXPECT_TRUE(torch::equal(back.data, label.data.to(torch::kInt64)));
  }
}

TEST(ImageIo, FourDimensionalNiftiHoldsOneVolumePerChannel) {
  testing::TempDir dir;
  Image multihot;
  multihot.geometry = oblique_geometry();
  multihot.data = (torch::arange(3 * 2 * 3 * 4).reshape({3, 2, 3, 4}) % 3 == 0).to(torch::kUInt8);
  write_image(multihot, dir / "multihot.nii.gz");
  const ImageHeader header = read_image_header(dir / "multihot.nii.gz");
  EXPECT_EQ(header.num_dimensions, 4);
  EXPECT_EQ(header.num_channels, 3);
  const Image back = read_label_image(dir / "multihot.nii.gz");
  EXPECT_TRUE(torch::equal(back.data, multihot.data.to(torch::kInt64)));
  expect_geometry_near(back.geometry, multihot.geometry, 1e-5);
}

TEST(ImageIo, PngRgbBecomesThreeChannelsAndGrayOne) {
  testing::TempDir dir;
  Image rgb;
  rgb.data = torch::randint(0, 256, {3, 1, 7, 9}, torch::kInt64).to(torch::kUInt8);
  write_image(rgb, dir / "rgb.png");
  const Image back = read_image(dir / "rgb.png");
  ASSERT_EQ(back.data.sizes(), (std::vector<std::int64_t>{3, 1, 7, 9}));
  EXPECT_TRUE(torch::equal(back.data, rgb.data.to(torch::kFloat32)));
  Image mask;
  mask.data = (torch::arange(63).reshape({1, 1, 7, 9}) % 2 * 255).to(torch::kUInt8);
  write_image(mask, dir / "mask.png");
  EXPECT_TRUE(torch::equal(read_label_image(dir / "mask.png").data, mask.data.to(torch::kInt64)));
  // 3D data cannot go into a PNG.
  Image volume;
  volume.data = torch::zeros({1, 2, 3, 3}, torch::kUInt8);
  EXPECT_THROW(write_image(volume, dir / "volume.png"), Error);
  EXPECT_FALSE(fs::exists(dir / "volume.png"));
}

TEST(ImageIo, FloatLabelsMustBeIntegral) {
  testing::TempDir dir;
  Image label;
  label.data = torch::tensor({0.0f, 0.99999997f, 2.0f, 0.5f}).reshape({1, 1, 2, 2});
  write_image(label, dir / "bad.nii.gz");
  try {
    read_label_image(dir / "bad.nii.gz");
    FAIL() << "non-integral label accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), "label_not_integer");
    EXPECT_NE(error.problem().find("0.5"), std::string::npos);
    EXPECT_NE(error.problem().find("z=0, y=1, x=1"), std::string::npos);
    EXPECT_EQ(error.where().file, (dir / "bad.nii.gz").string());
  }
  label.data[0][0][1][1] = 1.0f;
  write_image(label, dir / "good.nii.gz");
  EXPECT_TRUE(torch::equal(read_label_image(dir / "good.nii.gz").data.flatten(),
                           torch::tensor({0, 1, 2, 1}, torch::kInt64)));
}

// A hand-made NIfTI-1 header claiming `size`^3 uint8 voxels.
std::string nifti_header(int size) {
  std::string header(352, '\0');
  auto put_i32 = [&](int offset, std::int32_t value) { std::memcpy(&header[offset], &value, 4); };
  auto put_i16 = [&](int offset, std::int16_t value) { std::memcpy(&header[offset], &value, 2); };
  auto put_f32 = [&](int offset, float value) { std::memcpy(&header[offset], &value, 4); };
  put_i32(0, 348);
  const std::int16_t dims[8] = {3, static_cast<std::int16_t>(size), static_cast<std::int16_t>(size),
                                static_cast<std::int16_t>(size), 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put_i16(40 + 2 * i, dims[i]);
  put_i16(70, 2);  // datatype uint8
  put_i16(72, 8);  // bitpix
  for (int i = 0; i < 8; ++i) put_f32(76 + 4 * i, 1.0f);
  put_f32(108, 352.0f);  // vox_offset
  std::memcpy(&header[344], "n+1\0", 4);
  return header;
}

TEST(ImageIo, HostileHeaderFailsBeforeAllocating) {
  testing::TempDir dir;
  {
    std::ofstream file(dir / "huge.nii", std::ios::binary);
    file << nifti_header(30000) << std::string(64, '\1');
  }
  try {
    read_image(dir / "huge.nii");
    FAIL() << "absurd header accepted";
  } catch (const Error& error) {
    EXPECT_TRUE(error.code() == "implausible_header" || error.code() == "file_truncated") << error.what();
    EXPECT_NE(std::string(error.what()).find("huge.nii"), std::string::npos);
  }
  // The same header gzip-compressed: bounded by the compression-ratio check.
  const std::string payload = nifti_header(20000) + std::string(1 << 16, '\0');
  gzFile gz = gzopen((dir / "huge.nii.gz").c_str(), "wb");
  gzwrite(gz, payload.data(), static_cast<unsigned>(payload.size()));
  gzclose(gz);
  try {
    read_image(dir / "huge.nii.gz");
    FAIL() << "absurd compressed header accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), "implausible_header") << error.what();
  }
  // A plausible small header whose data is missing: truncated.
  {
    std::ofstream file(dir / "short.nii", std::ios::binary);
    file << nifti_header(64) << std::string(100, '\1');
  }
  try {
    read_image(dir / "short.nii");
    FAIL() << "truncated file accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), "file_truncated") << error.what();
  }
}

TEST(ImageIo, MissingEmptyAndForeignFilesGiveSpecificErrors) {
  testing::TempDir dir;
  auto code_of = [](const fs::path& path) {
    try {
      read_image(path);
    } catch (const Error& error) {
      return error.code();
    }
    return std::string("no error");
  };
  EXPECT_EQ(code_of(dir / "absent.nii.gz"), "file_missing");
  std::ofstream(dir / "empty.nii.gz").close();
  EXPECT_EQ(code_of(dir / "empty.nii.gz"), "file_empty");
  std::ofstream(dir / "text.nii.gz") << "this is not an image";
  EXPECT_EQ(code_of(dir / "text.nii.gz"), "unreadable_header");
  std::ofstream(dir / "notes.txt") << "x";
  EXPECT_THROW(read_image(dir / "notes.txt"), Error);
}

TEST(ImageIoRealData, SurvivesTheDocumentedQuirks) {
  MLSEG_REQUIRE_SHARED_DATA();
  const fs::path data = testing::shared_data_dir();
  // scl_slope = NaN means "no scaling": values stay as stored.
  const Image image = read_image(data / "Dataset004_Hippocampus/imagesTr/hippocampus_001_0000.nii.gz");
  EXPECT_EQ(image.data.sizes(), (std::vector<std::int64_t>{1, 35, 51, 35}));
  EXPECT_TRUE(torch::isfinite(image.data).all().item<bool>());
  EXPECT_EQ(image.data.max().item<float>(), 139.0f);
  // Labels stored as float32.
  const ImageHeader header = read_image_header(data / "Dataset004_Hippocampus/labelsTr/hippocampus_003.nii.gz");
  EXPECT_EQ(header.component_type, "float32");
  const Image label = read_label_image(data / "Dataset004_Hippocampus/labelsTr/hippocampus_003.nii.gz");
  EXPECT_EQ(label.data.max().item<std::int64_t>(), 2);
  EXPECT_EQ(label.data.min().item<std::int64_t>(), 0);
  // A brain mask whose foreground reads 0.99999997 is a valid label.
  const Image mask = read_label_image(data / "Dataset001_BraTS2015/brainmasks/BRATS_0002.nii.gz");
  EXPECT_EQ(std::get<0>(torch::_unique(mask.data)).numel(), 2);
  EXPECT_EQ(mask.data.max().item<std::int64_t>(), 1);
  // RGB TIFF and JPEG become 3 channels of a 2D image.
  const Image fundus = read_image(data / "drive_2d/training/images/21_training.tif");
  EXPECT_EQ(fundus.data.sizes(), (std::vector<std::int64_t>{3, 1, 584, 565}));
  const Image skin = read_image(data / "isic2018_sample_2d/original/ISIC_0000000.jpg");
  EXPECT_EQ(skin.data.size(0), 3);
  // Geometry of a real file round-trips exactly.
  testing::TempDir dir;
  const Image ct = read_image(data / "totalsegmentator_ct/example_ct_sm.nii.gz");
  write_image(ct, dir / "ct.nii.gz");
  const Image back = read_image(dir / "ct.nii.gz");
  EXPECT_EQ(back.geometry, ct.geometry);
  EXPECT_TRUE(torch::equal(back.data, ct.data));
}

// Found by tests/fuzz/image_2d_fuzz: a PNG whose IHDR is followed by a second signature and a
// malformed sCAL chunk. libpng's error ended in abort() inside ITK 5.2's PNGImageIO (no error
// handler set); mlseg decodes PNGs itself first and reports an Error.
TEST(CorruptPng, LibpngErrorIsAnErrorNotAnAbort) {
  if (!image_io_available()) GTEST_SKIP() << "PNG needs the ITK build";
  static const unsigned char crash[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
      0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,
      0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00,
      0x00, 0x00, 0x00, 0x91, 0x9f, 0xf1, 0x1a, 0x00, 0x00, 0x00, 0x07, 0x73, 0x43, 0x41, 0x4c, 0x01, 0x2e, 0x37,
      0x35, 0x00, 0x2e, 0x35, 0x00, 0xfd, 0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00, 0x07, 0x73, 0x43, 0x41, 0x4c, 0x01,
      0x2e, 0x37, 0x35, 0x00, 0x2e, 0x35, 0xdc, 0x80, 0x37, 0xa3, 0x00, 0xdc, 0x80, 0x37, 0xa3, 0x00, 0x00, 0x00,
      0x16, 0x00};
  testing::TempDir dir;
  std::ofstream(dir / "crash.png", std::ios::binary).write(reinterpret_cast<const char*>(crash), sizeof(crash));
  try {
    (void)read_image(dir / "crash.png");
    FAIL() << "expected an Error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), "unreadable_header");
    EXPECT_NE(error.problem().find("not a valid PNG"), std::string::npos) << error.problem();
  }
  // A PNG cut inside its pixel data is an Error too (libpng's error in png_read_row).
  write_image(Image{torch::arange(64, torch::kUInt8).reshape({1, 1, 8, 8}), {}}, dir / "ok.png");
  std::ifstream in(dir / "ok.png", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir / "cut.png", std::ios::binary) << bytes.substr(0, bytes.size() - 20);
  EXPECT_THROW((void)read_image(dir / "cut.png"), Error);
  EXPECT_EQ(read_image(dir / "ok.png").data.sizes(), (std::vector<std::int64_t>{1, 1, 8, 8}));
}

}  // namespace
// Writes `bytes` to dir/name and expects read_image to refuse it with an Error of `code` whose
// problem contains `message` (the hostile inputs the fuzz targets found).
void expect_read_error(const std::filesystem::path& dir, const std::string& name, const unsigned char* bytes, std::size_t size,
                       const std::string& code, const std::string& message) {
  std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(size));
  try {
    (void)read_image(dir / name);
    ADD_FAILURE() << name << ": expected an Error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    EXPECT_NE(error.problem().find(message), std::string::npos) << error.problem();
  }
}

// Found by tests/fuzz/image_2d_fuzz: a 233-byte TIFF whose directory holds a tag of 1.4e9 values.
// ITK 5.2's bundled libtiff allocated them (1.4 GB) before checking them against the file; mlseg
// reads the directories itself first and refuses values the file cannot hold, and pixel counts
// or strip tables beyond what the file could describe.
TEST(HostileTiff, DeclaredSizesBeyondTheFileAreAnErrorNotAnAllocation) {
  if (!image_io_available()) GTEST_SKIP() << "TIFF needs the ITK build";
  static const unsigned char oom[] = {
      0x49, 0x49, 0x2a, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x02, 0x02, 0x03, 0x00, 0x01, 0x0f, 0x00,
      0x00, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01, 0x03, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
      0x03, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x80, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x11, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
      0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0xf6, 0x01, 0x00, 0x00, 0x00, 0x15, 0x01, 0x03, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x16, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x55, 0x55, 0x05, 0x00,
      0x17, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x16, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00,
      0x55, 0x55, 0x05, 0x00, 0x17, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x1a, 0x01,
      0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0xca, 0x00, 0x00, 0x00, 0x1b, 0x01, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00,
      0xd2, 0x00, 0x00, 0x00, 0x1c, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x28, 0x01,
      0x03, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x43, 0x1e, 0x8f, 0x07, 0xff, 0xff, 0xff, 0xff, 0x29, 0x14,
      0x0a, 0x05, 0x49, 0x6e, 0x73, 0x69, 0x67, 0x68, 0x74, 0x54, 0x6f, 0x6f, 0x6c, 0x6b, 0x69, 0x74, 0x00};
  testing::TempDir dir;
  expect_read_error(dir.path(), "oom.tif", oom, sizeof(oom), "implausible_header", "more than the file of 233 bytes holds");
  // A valid TIFF passes; the same file declaring 100000 x 100000 pixels does not.
  write_image(Image{torch::arange(64, torch::kUInt8).reshape({1, 1, 8, 8}), {}}, dir / "ok.tif");
  EXPECT_EQ(read_image(dir / "ok.tif").data.sizes(), (std::vector<std::int64_t>{1, 1, 8, 8}));
  std::ifstream in(dir / "ok.tif", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto u32 = [&](std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at])) | static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 2])) << 16 | static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 3])) << 24;
  };
  ASSERT_EQ(bytes.substr(0, 2), "II");
  const std::uint32_t ifd = u32(4);
  const int entries = static_cast<unsigned char>(bytes[ifd]) | static_cast<unsigned char>(bytes[ifd + 1]) << 8;
  for (int e = 0; e < entries; ++e) {
    const std::size_t at = ifd + 2 + 12 * static_cast<std::size_t>(e);
    const int tag = static_cast<unsigned char>(bytes[at]) | static_cast<unsigned char>(bytes[at + 1]) << 8;
    const int type = static_cast<unsigned char>(bytes[at + 2]);
    if ((tag == 256 || tag == 257) && type == 3) {  // SHORT width/length: 100000 does not fit, use 60000
      bytes[at + 8] = static_cast<char>(60000 & 0xff);
      bytes[at + 9] = static_cast<char>(60000 >> 8);
    } else if ((tag == 256 || tag == 257) && type == 4) {
      const std::uint32_t huge = 100000;
      std::memcpy(&bytes[at + 8], &huge, 4);
    }
  }
  std::ofstream(dir / "huge.tif", std::ios::binary) << bytes;
  try {
    (void)read_image(dir / "huge.tif");
    FAIL() << "expected an Error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), "implausible_header");
    EXPECT_NE(error.problem().find("pixels of 1 x 8 bits in a file of"), std::string::npos) << error.problem();
  }
}

// Found by tests/fuzz/image_2d_fuzz: a TIFF whose DateTime tag holds 15 characters; ITK 5.2's
// ReadTIFFTags copied 20 (a heap-buffer-overflow under ASan). Refused before ITK reads it.
TEST(HostileTiff, AShortDateTimeIsAnErrorNotAnOverflow) {
  if (!image_io_available()) GTEST_SKIP() << "TIFF needs the ITK build";
  static const unsigned char overflow[] = {
      0x49, 0x49, 0x2a, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x02, 0x02, 0x02, 0x03,
      0x03, 0x03, 0x0f, 0x00, 0x00, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
      0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x01, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00,
      0xde, 0x00, 0x00, 0x00, 0x03, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01,
      0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x11, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00,
      0x08, 0x00, 0x00, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x15, 0x01,
      0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x16, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00,
      0xaa, 0xaa, 0x02, 0x00, 0x17, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x1a, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x1b, 0x02, 0xfb, 0x00, 0x01, 0x00, 0x00, 0x00,
      0xd6, 0x00, 0x00, 0x00, 0x1c, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x28, 0x01,
      0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x32, 0x01, 0x02, 0x00, 0x0f, 0x00, 0x00, 0x00,
      0xe4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x43, 0x1e, 0x8f, 0x07, 0xff, 0xff,
      0xff, 0xff, 0x29, 0x14, 0x0a, 0x05, 0x08, 0x00, 0x08, 0x00, 0x08, 0x00, 0x49, 0x6e, 0x73, 0x69, 0x67, 0x68,
      0x74, 0x54, 0x6f, 0x6f, 0x6c, 0x6b, 0x69, 0x74, 0x00};
  testing::TempDir dir;
  expect_read_error(dir.path(), "datetime.tif", overflow, sizeof(overflow), "implausible_header", "DateTime tag has 15 characters");
}

// Found by tests/fuzz/image_2d_fuzz: a 71-byte PNG whose header or ancillary chunk made libpng
// allocate 1.2 GB. mlseg's PNG check caps ancillary chunks and the declared pixel bytes.
TEST(CorruptPng, DeclaredSizesBeyondTheFileAreAnErrorNotAnAllocation) {
  if (!image_io_available()) GTEST_SKIP() << "PNG needs the ITK build";
  static const unsigned char oom[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
      0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73, 0x47, 0x00, 0x00,
      0x07, 0x73, 0x43, 0x41, 0x4c, 0x01, 0x2e, 0x30, 0x30, 0x00, 0x2e, 0x35, 0xdc, 0x80, 0x37, 0xa3, 0x00, 0x00,
      0x00, 0x16, 0x49, 0x44, 0x24, 0x54, 0x08, 0x5b, 0x63, 0x60, 0x60, 0x60, 0x60, 0xae, 0x42, 0x60, 0x82};
  testing::TempDir dir;
  std::ofstream(dir / "oom.png", std::ios::binary).write(reinterpret_cast<const char*>(oom), sizeof(oom));
  EXPECT_THROW((void)read_image(dir / "oom.png"), Error);
}

// Found by tests/fuzz/image_2d_fuzz: a TIFF text tag without its closing NUL; ITK 5.2's
// ReadTIFFTags ran strlen past its end (a heap-buffer-overflow under ASan).
TEST(HostileTiff, AnUnterminatedTextTagIsAnErrorNotAnOverflow) {
  if (!image_io_available()) GTEST_SKIP() << "TIFF needs the ITK build";
  static const unsigned char overflow[] = {
      0x49, 0x49, 0x2a, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x02, 0x02, 0x03, 0x00, 0x01, 0x0f, 0x00,
      0x00, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01, 0x03, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x60, 0x30, 0x00, 0xc0, 0x31, 0x50, 0x00, 0x00, 0x00,
      0x03, 0xf9, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x80, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x11, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
      0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x15, 0x01, 0x03, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x16, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x55, 0x55, 0x05, 0x00,
      0x17, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x1a, 0x01, 0x05, 0x00, 0x01, 0x00,
      0x00, 0x00, 0xca, 0x00, 0x00, 0x00, 0x1b, 0x01, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd2, 0x00, 0x00, 0x00,
      0x1c, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x28, 0x01, 0x03, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x31, 0x01, 0x02, 0x00, 0x0f, 0x00, 0x00, 0x00, 0xda, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x43, 0x1e, 0x8f, 0x07, 0xff, 0xff, 0xff, 0xff, 0x29, 0x14,
      0x0a, 0x05, 0x49, 0x6e, 0x73, 0x69, 0x67, 0x68, 0x74, 0x54, 0x6f, 0x6f, 0x6c, 0x6b, 0x69, 0x74, 0x00};
  testing::TempDir dir;
  expect_read_error(dir.path(), "text.tif", overflow, sizeof(overflow), "implausible_header", "does not end with a NUL character");
}

// Found by tests/fuzz/image_2d_fuzz: a 75-byte PNG whose sCAL chunk declares 1 GB, which libpng
// allocated before reading it. mlseg walks the chunk lengths first.
TEST(CorruptPng, AChunkLongerThanTheFileIsAnErrorNotAnAllocation) {
  if (!image_io_available()) GTEST_SKIP() << "PNG needs the ITK build";
  static const unsigned char oom[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
      0x00, 0x04, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x00, 0x00, 0x91, 0x9f, 0xf1, 0x1a, 0x40, 0x00, 0x00,
      0x07, 0x73, 0x43, 0x41, 0x4c, 0x01, 0x2e, 0x37, 0x35, 0x00, 0x2e, 0x35, 0xdc, 0x80, 0x37, 0xa3, 0x00, 0x00,
      0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x08, 0x5b, 0x05, 0xc1, 0x01, 0x41, 0x00, 0x00, 0x00, 0x82, 0x20, 0xec,
      0xff, 0xe8, 0x20};
  testing::TempDir dir;
  expect_read_error(dir.path(), "scal.png", oom, sizeof(oom), "unreadable_header", "sCAL chunk declares 1073741831 bytes");
}

}  // namespace mlseg
