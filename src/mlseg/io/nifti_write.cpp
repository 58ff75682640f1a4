// Writing .nii / .nii.gz (see nifti_format.h): the header mlseg writes and the atomic file write.
#include <libdeflate.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/nifti_format.h"
#include "mlseg/io/nifti_internal.h"

namespace mlseg {
namespace {

constexpr std::int32_t kNifti1HeaderSize = 348;
constexpr std::int32_t kNifti2HeaderSize = 540;
/// Bytes between the header and the pixels in files mlseg writes: the 4-byte "no extension" flag.
constexpr std::int64_t kExtensionFlagBytes = 4;
/// NIfTI-1 stores extents as int16.
constexpr std::int64_t kNifti1MaxExtent = 32767;

using detail::Quaternion;
using detail::quaternion_of;

template <typename T>
void put(std::vector<unsigned char>& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// The header bytes of a file mlseg writes.
std::vector<unsigned char> header_bytes(const NiftiWriteInput& image, bool version2) {
  const Geometry& g = image.geometry;
  const std::array<std::int64_t, 3> size_xyz{image.shape_zyx[2], image.shape_zyx[1], image.shape_zyx[0]};
  const std::array<double, 3> spacing_xyz{g.spacing_zyx_mm[2], g.spacing_zyx_mm[1], g.spacing_zyx_mm[0]};
  // ITK direction (LPS, x-y-z order) -> RAS rotation and offset.
  std::array<std::array<double, 3>, 3> rotation{};
  std::array<double, 3> offset{};
  for (int r = 0; r < 3; ++r) {
    const double flip = r < 2 ? -1.0 : 1.0;
    for (int c = 0; c < 3; ++c) rotation[r][c] = flip * g.direction_zyx[2 - r][2 - c];
    offset[r] = flip * g.origin_zyx_mm[2 - r];
  }
  const Quaternion q = quaternion_of(rotation);
  const int dims = image.num_channels > 1 ? 4 : 3;
  std::array<std::int64_t, 8> dim{dims, size_xyz[0], size_xyz[1], size_xyz[2], image.num_channels, 1, 1, 1};
  std::array<double, 8> pixdim{q.qfac, spacing_xyz[0], spacing_xyz[1], spacing_xyz[2], 1, 1, 1, 1};
  const int element = nifti_element_size(image.datatype);
  constexpr int kXformScannerAnat = 1;
  constexpr int kUnitsMmSec = 2 | 8;
  std::vector<unsigned char> bytes(static_cast<std::size_t>((version2 ? kNifti2HeaderSize : kNifti1HeaderSize) + kExtensionFlagBytes), 0);
  const std::int64_t vox_offset = static_cast<std::int64_t>(bytes.size());
  if (!version2) {
    put<std::int32_t>(bytes, 0, kNifti1HeaderSize);
    put<char>(bytes, 38, 'r');  // "regular", as nifti1_io writes
    for (int i = 0; i < 8; ++i) put<std::int16_t>(bytes, 40 + 2 * i, static_cast<std::int16_t>(dim[i]));
    put<std::int16_t>(bytes, 70, static_cast<std::int16_t>(image.datatype));
    put<std::int16_t>(bytes, 72, static_cast<std::int16_t>(8 * element));
    for (int i = 0; i < 8; ++i) put<float>(bytes, 76 + 4 * i, static_cast<float>(pixdim[i]));
    put<float>(bytes, 108, static_cast<float>(vox_offset));
    put<float>(bytes, 112, 1.0f);  // scl_slope
    put<std::uint8_t>(bytes, 123, kUnitsMmSec);
    put<std::int16_t>(bytes, 252, kXformScannerAnat);
    put<std::int16_t>(bytes, 254, kXformScannerAnat);
    put<float>(bytes, 256, static_cast<float>(q.b));
    put<float>(bytes, 260, static_cast<float>(q.c));
    put<float>(bytes, 264, static_cast<float>(q.d));
    for (int r = 0; r < 3; ++r) put<float>(bytes, 268 + 4 * r, static_cast<float>(offset[r]));
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) put<float>(bytes, 280 + 16 * r + 4 * c, static_cast<float>(rotation[r][c] * spacing_xyz[c]));
      put<float>(bytes, 280 + 16 * r + 12, static_cast<float>(offset[r]));
    }
    std::memcpy(bytes.data() + 344, "n+1\0", 4);
  } else {
    put<std::int32_t>(bytes, 0, kNifti2HeaderSize);
    std::memcpy(bytes.data() + 4, "n+2\0\r\n\032\n", 8);
    put<std::int16_t>(bytes, 12, static_cast<std::int16_t>(image.datatype));
    put<std::int16_t>(bytes, 14, static_cast<std::int16_t>(8 * element));
    for (int i = 0; i < 8; ++i) put<std::int64_t>(bytes, 16 + 8 * i, dim[i]);
    for (int i = 0; i < 8; ++i) put<double>(bytes, 104 + 8 * i, pixdim[i]);
    put<std::int64_t>(bytes, 168, vox_offset);
    put<double>(bytes, 176, 1.0);  // scl_slope
    put<std::int32_t>(bytes, 344, kXformScannerAnat);
    put<std::int32_t>(bytes, 348, kXformScannerAnat);
    put<double>(bytes, 352, q.b);
    put<double>(bytes, 360, q.c);
    put<double>(bytes, 368, q.d);
    for (int r = 0; r < 3; ++r) put<double>(bytes, 376 + 8 * r, offset[r]);
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) put<double>(bytes, 400 + 32 * r + 8 * c, rotation[r][c] * spacing_xyz[c]);
      put<double>(bytes, 400 + 32 * r + 24, offset[r]);
    }
    put<std::int32_t>(bytes, 500, kUnitsMmSec);
  }
  return bytes;
}

void write_all(std::ofstream& out, const void* data, std::int64_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const std::int64_t chunk = std::min<std::int64_t>(size, std::int64_t{1} << 30);
    out.write(bytes, static_cast<std::streamsize>(chunk));
    bytes += chunk;
    size -= chunk;
  }
}

}  // namespace

void write_nifti(const std::filesystem::path& path, const NiftiWriteInput& image, const NiftiWriteOptions& options) {
  const ErrorLocation where{path.string(), "", ""};
  const int element = nifti_element_size(image.datatype);
  if (element == 0 || !image.data) throw Error("cannot write NIfTI " + nifti_datatype_name(image.datatype), "this is a bug in the caller", where);
  const bool version2 = std::max({image.shape_zyx[0], image.shape_zyx[1], image.shape_zyx[2], image.num_channels}) > kNifti1MaxExtent;
  const std::vector<unsigned char> header = header_bytes(image, version2);
  const std::int64_t pixel_bytes =
      image.shape_zyx[0] * image.shape_zyx[1] * image.shape_zyx[2] * image.num_channels * element;
  AtomicOutput output(path);
  std::error_code ignored;
  std::filesystem::create_directories(path.parent_path().empty() ? "." : path.parent_path(), ignored);
  std::ofstream out(output.temp_path(), std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot create the file", "check that the folder exists, is writable and the disk is not full", where);
  if (detail::ends_with_gz(path)) {
    // One gzip member of header + pixels, compressed whole by libdeflate.
    const std::int64_t total = static_cast<std::int64_t>(header.size()) + pixel_bytes;
    SharedBuffer plain = SharedBuffer::allocate(total);
    std::memcpy(plain.data, header.data(), header.size());
    std::memcpy(plain.data + header.size(), image.data, static_cast<std::size_t>(pixel_bytes));
    std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> compressor(
        libdeflate_alloc_compressor(std::clamp(options.compression_level, 0, 12)), &libdeflate_free_compressor);
    if (!compressor) throw Error("out of memory while compressing", "free memory or write .nii", where);
    const std::size_t bound = libdeflate_gzip_compress_bound(compressor.get(), static_cast<std::size_t>(total));
    SharedBuffer packed = SharedBuffer::allocate(static_cast<std::int64_t>(bound));
    const std::size_t packed_size =
        libdeflate_gzip_compress(compressor.get(), plain.data, static_cast<std::size_t>(total), packed.data, bound);
    if (packed_size == 0) throw Error("gzip compression failed", "write .nii instead of .nii.gz", where);
    write_all(out, packed.data, static_cast<std::int64_t>(packed_size));
  } else {
    write_all(out, header.data(), static_cast<std::int64_t>(header.size()));
    write_all(out, image.data, pixel_bytes);
  }
  out.close();
  if (!out) throw Error("cannot write the image (disk full?)", "check free space in the output folder", where);
  output.commit();
}

}  // namespace mlseg
