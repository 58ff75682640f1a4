#pragma once
// A full libpng decode of a PNG under mlseg's own error handler, run before ITK reads the file:
// ITK 5.2's PNGImageIO sets no error handler, so libpng abort()s the process on a corrupt chunk
// (found by tests/fuzz/image_2d_fuzz). Built with ITK only (without it PNG is refused anyway).
#include <filesystem>

namespace mlseg::detail {

/// Throws mlseg::Error (code "unreadable_header" or "corrupt_pixel_data") naming `path` when
/// libpng reports an error anywhere in the file: signature, chunks, CRCs, pixel data.
void check_png_decodes(const std::filesystem::path& path);

}  // namespace mlseg::detail
