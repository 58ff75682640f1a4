#include "mlseg/io/tiff_check.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg::detail {
namespace {

constexpr const char* kFix = "check that the file opens in an image viewer; re-export or re-download it";
constexpr int kMaxDirectories = 4096;
constexpr std::uint64_t kMaxEntriesPerDirectory = 4096;

// Bytes per value of a TIFF field type (0: a type libtiff ignores).
int type_size(std::uint16_t type) {
  switch (type) {
    case 1: case 2: case 6: case 7: return 1;          // BYTE ASCII SBYTE UNDEFINED
    case 3: case 8: return 2;                          // SHORT SSHORT
    case 4: case 9: case 11: case 13: return 4;        // LONG SLONG FLOAT IFD
    case 5: case 10: case 12: case 16: case 17: case 18: return 8;  // RATIONAL SRATIONAL DOUBLE LONG8 SLONG8 IFD8
    default: return 0;
  }
}

class TiffFile {
 public:
  explicit TiffFile(const std::filesystem::path& path) : path_(path), in_(path, std::ios::binary) {
    std::error_code ec;
    size_ = std::filesystem::file_size(path, ec);
    if (!in_ || ec) throw Error("cannot open the file", kFix, {path.string(), "", ""}).with_code("unreadable_header");
  }

  std::uint64_t size() const { return size_; }

  // `bytes` little- or big-endian bytes at `offset` as an unsigned number; throws past the end.
  std::uint64_t read(std::uint64_t offset, int bytes) {
    if (offset > size_ || static_cast<std::uint64_t>(bytes) > size_ - offset) fail("its structure points past the end of the file");
    unsigned char buffer[8] = {0};
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(buffer), bytes);
    if (!in_) fail("it cannot be read to the end of its structure");
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) {
      const int shift = big_endian_ ? 8 * (bytes - 1 - i) : 8 * i;
      value |= static_cast<std::uint64_t>(buffer[i]) << shift;
    }
    return value;
  }

  void set_big_endian(bool big) { big_endian_ = big; }

  [[noreturn]] void fail(const std::string& problem, const char* code = "unreadable_header") const {
    throw Error("not a valid TIFF file: " + problem, kFix, {path_.string(), "", ""}).with_code(code);
  }

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  std::uint64_t size_ = 0;
  bool big_endian_ = false;
};

// The image fields of a directory that decide what a reader allocates.
struct ImageFields {
  std::uint64_t width = 0, length = 0, samples = 1, bits = 1, rows_per_strip = 0, tile_width = 0, tile_length = 0;
  bool planar_separate = false;
};

void check_declared_sizes(TiffFile& file, int index, const ImageFields& f) {
  // What the directory makes a reader allocate: the pixels, and one table entry per strip or tile.
  const long double pixel_bytes = static_cast<long double>(f.width) * static_cast<long double>(f.length) *
                                  static_cast<long double>(f.samples) * std::ceil(static_cast<long double>(f.bits) / 8.0L);
  const long double budget = std::max<long double>(kMinTiffPixelBudgetBytes, kMaxTiffCompressionRatio * static_cast<long double>(file.size()));
  if (pixel_bytes > budget) {
    file.fail("directory " + std::to_string(index) + " declares " + std::to_string(f.width) + " x " + std::to_string(f.length) +
                  " pixels of " + std::to_string(f.samples) + " x " + std::to_string(f.bits) + " bits in a file of " +
                  std::to_string(file.size()) + " bytes",
              "implausible_header");
  }
  long double pieces = 1;
  if (f.tile_width > 0 && f.tile_length > 0) {
    pieces = std::ceil(static_cast<long double>(f.width) / f.tile_width) * std::ceil(static_cast<long double>(f.length) / f.tile_length);
  } else if (f.rows_per_strip > 0) {
    pieces = std::ceil(static_cast<long double>(f.length) / f.rows_per_strip);
  }
  if (f.planar_separate) pieces *= static_cast<long double>(f.samples);
  if (pieces * 4 > static_cast<long double>(file.size())) {
    file.fail("directory " + std::to_string(index) + " declares " + std::to_string(static_cast<unsigned long long>(
                  std::min<long double>(pieces, 1e18L))) + " strips or tiles, more than the file has room to list",
              "implausible_header");
  }
}

}  // namespace

void check_tiff_directories(const std::filesystem::path& path) {
  TiffFile file(path);
  if (file.size() < 8) file.fail("it is shorter than a TIFF header");
  const std::uint64_t order = file.read(0, 2);
  if (order == 0x4d4d) {
    file.set_big_endian(true);
  } else if (order != 0x4949) {
    file.fail("its byte-order mark is neither II nor MM");
  }
  const std::uint64_t version = file.read(2, 2);
  if (version != 42 && version != 43) file.fail("its version is " + std::to_string(version) + ", not 42 (TIFF) or 43 (BigTIFF)");
  const bool big_tiff = version == 43;
  const int offset_bytes = big_tiff ? 8 : 4, count_bytes = big_tiff ? 8 : 2, entry_bytes = big_tiff ? 20 : 12;
  std::uint64_t directory = file.read(big_tiff ? 8 : 4, offset_bytes);
  std::set<std::uint64_t> seen;
  for (int index = 0; directory != 0; ++index) {
    if (index >= kMaxDirectories) file.fail("it has more than " + std::to_string(kMaxDirectories) + " directories");
    if (!seen.insert(directory).second) file.fail("its directories form a loop");
    const std::uint64_t entries = file.read(directory, count_bytes);
    if (entries == 0 || entries > kMaxEntriesPerDirectory) {
      file.fail("directory " + std::to_string(index) + " claims " + std::to_string(entries) + " entries");
    }
    ImageFields fields;
    for (std::uint64_t e = 0; e < entries; ++e) {
      const std::uint64_t at = directory + static_cast<std::uint64_t>(count_bytes) + e * static_cast<std::uint64_t>(entry_bytes);
      const auto tag = static_cast<std::uint16_t>(file.read(at, 2));
      const auto type = static_cast<std::uint16_t>(file.read(at + 2, 2));
      const std::uint64_t count = file.read(at + 4, count_bytes == 2 ? 4 : 8);
      const int size = type_size(type);
      if (size == 0) continue;
      const std::uint64_t value_at = at + 4 + (big_tiff ? 8 : 4);
      // Values that do not fit in the entry lie elsewhere in the file: they must fit in it.
      if (count > file.size() / static_cast<std::uint64_t>(size)) {
        file.fail("tag " + std::to_string(tag) + " declares " + std::to_string(count) + " values, more than the file of " +
                      std::to_string(file.size()) + " bytes holds",
                  "implausible_header");
      }
      // DateTime is "YYYY:MM:DD HH:MM:SS" and its NUL, 20 bytes by the TIFF standard; ITK 5.2
      // copies 20 bytes whatever the count (a heap overflow on a shorter one: tests/fuzz).
      constexpr std::uint16_t kDateTimeTag = 306;
      if (tag == kDateTimeTag && count != 20) {
        file.fail("its DateTime tag has " + std::to_string(count) + " characters where TIFF requires 20", "implausible_header");
      }
      const std::uint64_t bytes = count * static_cast<std::uint64_t>(size);
      if (bytes > static_cast<std::uint64_t>(offset_bytes)) {
        const std::uint64_t data = file.read(value_at, offset_bytes);
        if (data > file.size() || bytes > file.size() - data) {
          file.fail("tag " + std::to_string(tag) + "'s values lie past the end of the file", "implausible_header");
        }
      }
      // ASCII values end with a NUL by the standard; ITK 5.2 runs strlen on them (a heap overflow
      // on one without: tests/fuzz/image_2d_fuzz).
      constexpr std::uint16_t kAscii = 2;
      if (type == kAscii && count > 0) {
        const std::uint64_t start = bytes > static_cast<std::uint64_t>(offset_bytes) ? file.read(value_at, offset_bytes) : value_at;
        if (file.read(start + count - 1, 1) != 0) {
          file.fail("its text tag " + std::to_string(tag) + " does not end with a NUL character", "implausible_header");
        }
      }
      if (count == 0 || (size != 2 && size != 4 && size != 8) || type == 11 || type == 12 || type == 5 || type == 10) continue;
      const std::uint64_t first = bytes <= static_cast<std::uint64_t>(offset_bytes) ? file.read(value_at, size) : 0;
      switch (tag) {
        case 256: fields.width = first; break;
        case 257: fields.length = first; break;
        case 258: if (first > 0) fields.bits = first; break;
        case 277: fields.samples = std::max<std::uint64_t>(1, first); break;
        case 278: fields.rows_per_strip = first; break;
        case 284: fields.planar_separate = first == 2; break;
        case 322: fields.tile_width = first; break;
        case 323: fields.tile_length = first; break;
        default: break;
      }
    }
    check_declared_sizes(file, index, fields);
    const std::uint64_t next_at = directory + static_cast<std::uint64_t>(count_bytes) + entries * static_cast<std::uint64_t>(entry_bytes);
    directory = file.read(next_at, offset_bytes);
  }
}

}  // namespace mlseg::detail
