// .npy files: round trips, numpy's header layout, unsigned codes, and errors for broken files.
#include "mlseg/io/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "mlseg/core/error.h"
#include "test_support.h"

namespace {

using mlseg::testing::TempDir;

/// A minimal .npy reader written from the format description, independent of mlseg's: returns the
/// header dict text and the raw data bytes.
struct RawNpy {
  std::string dict;
  std::string data;
  size_t header_bytes = 0;
};
RawNpy read_raw(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  RawNpy raw;
  EXPECT_EQ(bytes.substr(0, 6), std::string("\x93NUMPY"));
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t length = 0, prefix = 0;
  if (major == 1) {
    length = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    prefix = 10;
  } else {
    for (int i = 0; i < 4; ++i) length |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    prefix = 12;
  }
  raw.dict = bytes.substr(prefix, length);
  raw.header_bytes = prefix + length;
  raw.data = bytes.substr(prefix + length);
  return raw;
}

TEST(Npy, FloatArrayMatchesNumpysLayoutAndRoundTrips) {
  TempDir dir;
  const auto tensor = torch::arange(24, torch::kFloat).reshape({2, 3, 4}) * 0.5f;
  mlseg::write_npy(dir / "a.npy", tensor);
  const RawNpy raw = read_raw(dir / "a.npy");
  EXPECT_EQ(raw.header_bytes % 64, 0u) << "numpy aligns the data to 64 bytes";
  EXPECT_NE(raw.dict.find("'descr': '<f4'"), std::string::npos) << raw.dict;
  EXPECT_NE(raw.dict.find("'fortran_order': False"), std::string::npos);
  EXPECT_NE(raw.dict.find("'shape': (2, 3, 4)"), std::string::npos) << raw.dict;
  EXPECT_EQ(raw.dict.back(), '\n');
  ASSERT_EQ(raw.data.size(), 24u * 4u);
  float third = 0;
  std::memcpy(&third, raw.data.data() + 3 * 4, 4);
  EXPECT_FLOAT_EQ(third, 1.5f);
  EXPECT_TRUE(torch::equal(mlseg::read_npy(dir / "a.npy"), tensor));
}

TEST(Npy, OneDimensionalShapeHasTrailingComma) {
  TempDir dir;
  mlseg::write_npy(dir / "v.npy", torch::arange(5, torch::kInt));
  EXPECT_NE(read_raw(dir / "v.npy").dict.find("'shape': (5,)"), std::string::npos);
  EXPECT_TRUE(torch::equal(mlseg::read_npy(dir / "v.npy"), torch::arange(5, torch::kInt)));
}

TEST(Npy, CodesAreWrittenUnsignedAndKeepTheirBitPatterns) {
  TempDir dir;
  auto codes = torch::tensor({0, 1, -32768, -1}, torch::kInt16);  // 0x8000 and 0xffff as bit patterns
  mlseg::write_npy(dir / "c.npy", codes, true);
  const RawNpy raw = read_raw(dir / "c.npy");
  EXPECT_NE(raw.dict.find("'descr': '<u2'"), std::string::npos) << raw.dict;
  std::uint16_t third = 0;
  std::memcpy(&third, raw.data.data() + 4, 2);
  EXPECT_EQ(third, 0x8000);
  const auto header = mlseg::read_npy_header(dir / "c.npy");
  EXPECT_EQ(header.descr, "<u2");
  EXPECT_EQ(header.dtype, torch::kInt16);
  EXPECT_TRUE(torch::equal(mlseg::read_npy(dir / "c.npy"), codes));
  mlseg::write_npy(dir / "u8.npy", torch::tensor({1, 255}, torch::kUInt8), true);
  EXPECT_EQ(mlseg::read_npy_header(dir / "u8.npy").descr, "|u1");
}

TEST(Npy, MappingViewsTheFileWithoutCopying) {
  TempDir dir;
  const auto tensor = torch::rand({3, 5, 7});
  mlseg::write_npy(dir / "m.npy", tensor);
  torch::Tensor view;
  {
    auto mapping = mlseg::NpyMapping::open(dir / "m.npy");
    view = mapping->tensor();
    EXPECT_EQ(view.data_ptr(), mapping->data());
  }
  // The view keeps the mapping alive after the last other reference is gone.
  EXPECT_TRUE(torch::equal(view, tensor));
}

TEST(Npy, TruncatedFileIsAClearError) {
  TempDir dir;
  mlseg::write_npy(dir / "t.npy", torch::zeros({10, 10}));
  std::filesystem::resize_file(dir / "t.npy", std::filesystem::file_size(dir / "t.npy") - 8);
  try {
    mlseg::read_npy(dir / "t.npy");
    FAIL() << "expected an error";
  } catch (const mlseg::Error& error) {
    EXPECT_NE(std::string(error.what()).find("t.npy"), std::string::npos) << error.what();
    EXPECT_NE(error.problem().find("truncated"), std::string::npos) << error.problem();
  }
}

// Reported with the fuzz targets (#22): an empty dimension after huge ones passed the size check
// (the product stopped at the 0) and num_elements() then overflowed int64.
TEST(Npy, HugeSizesBesideAZeroAreRejected) {
  TempDir dir;
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000000000, 1000000000000000000, 0), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream out(dir / "z.npy", std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char length[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
  out.write(length, 2);
  out << header;
  out.close();
  EXPECT_THROW(mlseg::read_npy_header(dir / "z.npy"), mlseg::Error);
  // A genuinely empty array still reads.
  mlseg::write_npy(dir / "empty.npy", torch::zeros({3, 0, 2}));
  EXPECT_EQ(mlseg::read_npy_header(dir / "empty.npy").num_elements(), 0);
}

TEST(Npy, HostileHeadersAreRejectedBeforeAllocating) {
  TempDir dir;
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000000000), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream out(dir / "h.npy", std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char length[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
  out.write(length, 2);
  out << header;
  out.close();
  EXPECT_THROW(mlseg::read_npy_header(dir / "h.npy"), mlseg::Error);
  std::ofstream(dir / "bad.npy") << "not numpy at all";
  EXPECT_THROW(mlseg::read_npy_header(dir / "bad.npy"), mlseg::Error);
}

TEST(Npy, FortranOrderAndBigEndianAreRefused) {
  TempDir dir;
  for (const std::string& dict : {std::string("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }"),
                                  std::string("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }")}) {
    std::string header = dict;
    header.append(64 - (10 + header.size() + 1) % 64, ' ');
    header += '\n';
    std::ofstream out(dir / "f.npy", std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    const char length[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
    out.write(length, 2);
    out << header << std::string(8, '\0');
    out.close();
    EXPECT_THROW(mlseg::read_npy_header(dir / "f.npy"), mlseg::Error) << dict;
  }
}

}  // namespace
