#pragma once
// A look at a TIFF's directories before ITK reads the file: ITK 5.2's bundled libtiff allocates
// what a header declares (strip tables of a declared size, tag arrays of a declared count) before
// it checks anything against the file, so a 200-byte file can make it allocate gigabytes (found
// by tests/fuzz/image_2d_fuzz). Torch- and ITK-free: a plain reader of the TIFF and BigTIFF
// directory structure, nothing of the pixels.
#include <filesystem>

namespace mlseg::detail {

/// Pixel bytes a TIFF may declare whatever its size (a 4096 x 4096 RGBA float image fits).
inline constexpr double kMinTiffPixelBudgetBytes = 256.0 * (1 << 20);
/// Beyond the budget, the declared pixel bytes may be at most this many times the file size
/// (compressed masks reach a few hundred).
inline constexpr double kMaxTiffCompressionRatio = 4096;

/// Throws mlseg::Error (code "unreadable_header" or "implausible_header") naming `path` when a
/// directory lies outside the file, loops, holds a tag whose values the file cannot hold, declares
/// more pixel bytes than the limits above, or more strips or tiles than the file has room to
/// list.
void check_tiff_directories(const std::filesystem::path& path);

}  // namespace mlseg::detail
