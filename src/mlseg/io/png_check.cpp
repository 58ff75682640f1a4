#include "mlseg/io/png_check.h"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg::detail {
namespace {

// Pixel bytes a PNG may declare whatever its size, and beyond that at most this many times its
// file size (as io/tiff_check.h); ancillary chunks inflate to at most kPngChunkMallocMaxBytes.
constexpr double kMinPngPixelBudgetBytes = 256.0 * (1 << 20);
constexpr double kMaxPngCompressionRatio = 4096;
constexpr png_alloc_size_t kPngChunkMallocMaxBytes = png_alloc_size_t{16} << 20;

struct DecodeState {
  std::string error;       ///< libpng's message, set by on_error before it jumps back
  bool header_done = false;
  bool implausible = false;  ///< the header declares more pixels than the file can hold
  double pixel_budget_bytes = kMinPngPixelBudgetBytes;
};

[[noreturn]] void on_error(png_structp png, png_const_charp message) {
  static_cast<DecodeState*>(png_get_error_ptr(png))->error = message ? message : "unknown libpng error";
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

// libpng's work only, between setjmp and the jump back: no object with a destructor lives here.
bool decode_rows(png_structp png, png_infop info, DecodeState& state, std::vector<png_byte>& row) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  state.header_done = true;
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  // ITK allocates the whole image next: a header declaring more than the file could hold is refused.
  const double image_bytes = static_cast<double>(png_get_rowbytes(png, info)) * static_cast<double>(height);
  if (image_bytes > state.pixel_budget_bytes) {
    state.error = "the header declares " + std::to_string(png_get_image_width(png, info)) + " x " + std::to_string(height) +
                  " pixels, more than a file of this size can hold";
    state.implausible = true;
    return false;
  }
  row.resize(png_get_rowbytes(png, info));
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 y = 0; y < height; ++y) png_read_row(png, row.data(), nullptr);
  }
  png_read_end(png, nullptr);
  return true;
}


// Walks the chunk headers: a chunk longer than what is left of the file is refused before libpng
// allocates its declared length (a 75-byte PNG with a 1 GB sCAL chunk: tests/fuzz/image_2d_fuzz).
void check_chunk_lengths(const std::filesystem::path& path, const ErrorLocation& where) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (!in || ec) return;  // libpng reports it
  std::uint64_t offset = 8;  // after the signature
  unsigned char header[8];
  while (offset + 8 <= size) {
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(reinterpret_cast<char*>(header), 8)) return;
    const std::uint64_t length = (std::uint64_t{header[0]} << 24) | (std::uint64_t{header[1]} << 16) | (std::uint64_t{header[2]} << 8) | header[3];
    const std::string type(reinterpret_cast<const char*>(header + 4), 4);
    if (length > size - offset - 8) {
      throw Error("not a valid PNG: its " + type + " chunk declares " + std::to_string(length) + " bytes, beyond the end of the " +
                      std::to_string(size) + "-byte file",
                  "re-export the image (the file is corrupt or truncated)", where)
          .with_code("unreadable_header");
    }
    if (type == "IEND") return;
    offset += 12 + length;
  }
}

}  // namespace

void check_png_decodes(const std::filesystem::path& path) {
  const ErrorLocation where{path.string(), "", ""};
  check_chunk_lengths(path, where);
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error("cannot open the file", "check that it exists and is readable", where);
  DecodeState state;
  std::error_code size_error;
  const auto file_bytes = static_cast<double>(std::filesystem::file_size(path, size_error));
  state.pixel_budget_bytes = std::max(kMinPngPixelBudgetBytes, kMaxPngCompressionRatio * (size_error ? 0.0 : file_bytes));
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, &on_error, &on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw Error("libpng could not start (out of memory?)", "retry with more memory", where);
  }
  png_init_io(png, file.get());
  // Ancillary chunks (iCCP, zTXt, ...) are inflated into memory: a few bytes can ask for a gigabyte.
  png_set_chunk_malloc_max(png, kPngChunkMallocMaxBytes);
  std::vector<png_byte> row;
  const bool decoded = decode_rows(png, info, state, row);
  png_destroy_read_struct(&png, &info, nullptr);
  if (!decoded) {
    throw Error("not a valid PNG: " + state.error + (state.header_done ? " (in the pixel data)" : " (in the header)"),
                "re-export the image (the file is corrupt or truncated)", where)
        .with_code(state.implausible ? "implausible_header" : state.header_done ? "corrupt_pixel_data" : "unreadable_header");
  }
}

}  // namespace mlseg::detail
