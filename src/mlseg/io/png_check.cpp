#include "mlseg/io/png_check.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg::detail {
namespace {

struct DecodeState {
  std::string error;       ///< libpng's message, set by on_error before it jumps back
  bool header_done = false;
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
  row.resize(png_get_rowbytes(png, info));
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 y = 0; y < height; ++y) png_read_row(png, row.data(), nullptr);
  }
  png_read_end(png, nullptr);
  return true;
}

}  // namespace

void check_png_decodes(const std::filesystem::path& path) {
  const ErrorLocation where{path.string(), "", ""};
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error("cannot open the file", "check that it exists and is readable", where);
  DecodeState state;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, &on_error, &on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw Error("libpng could not start (out of memory?)", "retry with more memory", where);
  }
  png_init_io(png, file.get());
  std::vector<png_byte> row;
  const bool decoded = decode_rows(png, info, state, row);
  png_destroy_read_struct(&png, &info, nullptr);
  if (!decoded) {
    throw Error("not a valid PNG: " + state.error + (state.header_done ? " (in the pixel data)" : " (in the header)"),
                "re-export the image (the file is corrupt or truncated)", where)
        .with_code(state.header_done ? "corrupt_pixel_data" : "unreadable_header");
  }
}

}  // namespace mlseg::detail
