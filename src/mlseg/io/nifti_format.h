#pragma once
// The NIfTI-1 and NIfTI-2 single-file formats (.nii, .nii.gz), read and written by mlseg itself,
// torch-free and without ITK.
//
// Reading keeps every value as stored (ITK's bundled nifti1_io zeroes NaN/Inf and zero-fills a
// truncated .nii.gz; mlseg must report both), checks that the stream holds all promised bytes, and
// leaves scaling (scl_slope/scl_inter) to the caller. Geometry follows ITK 5's NiftiImageIO, so an
// ITK build and an ITK-free build see the same image (tests/io/nifti_format_test.cpp compares
// them file by file):
//  - the sform is used when its code is 1 (scanner anatomical), or set while the qform is not, and
//    its 3x3 part is a rotation times the voxel sizes; only its rotation is kept (through a
//    quaternion, as nifti1_io does). Otherwise the qform (quaternion) when its code is set;
//    otherwise an identity direction at the origin. A preferred sform that shears, with no qform,
//    is refused (as ITK does);
//  - NIfTI's RAS+ world is turned into ITK's LPS+ (x and y negated);
//  - spacing is pixdim[1..3] (0 reads as 1; micron and metre units are converted to mm, the
//    origin is not); a 2D image's direction is its own 2x2 block, normalised.
// Measured against ITK 5.2 (tests/io/nifti_format_test.cpp): spacing and origin equal, direction
// equal to float32 rounding (ITK's own float arithmetic differs in the last bit now and then).
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "mlseg/core/geometry.h"
#include "mlseg/core/shared_buffer.h"

namespace mlseg {

/// NIfTI datatype codes mlseg reads and writes (nnU-Net datasets use no others).
enum NiftiDatatype : int {
  kNiftiUInt8 = 2,
  kNiftiInt16 = 4,
  kNiftiInt32 = 8,
  kNiftiFloat32 = 16,
  kNiftiFloat64 = 64,
  kNiftiInt8 = 256,
  kNiftiUInt16 = 512,
  kNiftiUInt32 = 768,
  kNiftiInt64 = 1024,
  kNiftiUInt64 = 1280,
};

/// Bytes per value of a datatype code; 0 for codes mlseg does not handle (RGB, complex, ...).
int nifti_element_size(int datatype);
/// "uint8", "int16", "float32", ...; "datatype 128" for codes mlseg does not handle.
std::string nifti_datatype_name(int datatype);

/// The fields of a NIfTI-1 or NIfTI-2 header that mlseg uses, widened to 64 bits.
struct NiftiHeader {
  int version = 1;              ///< 1 (348-byte header) or 2 (540-byte header)
  bool byte_swapped = false;    ///< stored in the other endianness
  bool single_file = true;      ///< magic "n+1"/"n+2"; false for .hdr/.img pairs ("ni1"/"ni2")
  std::array<std::int64_t, 8> dim{};
  std::array<double, 8> pixdim{};
  int datatype = 0;
  std::int64_t vox_offset = 0;
  double scl_slope = 0.0;
  double scl_inter = 0.0;
  int xyzt_units = 0;
  int qform_code = 0;
  int sform_code = 0;
  double quatern_b = 0.0, quatern_c = 0.0, quatern_d = 0.0;
  double qoffset_x = 0.0, qoffset_y = 0.0, qoffset_z = 0.0;
  std::array<std::array<double, 4>, 3> srow{};  ///< srow_x, srow_y, srow_z

  std::int64_t header_size() const { return version == 2 ? 540 : 348; }
  /// Scaling applies: slope finite and nonzero, and (slope, intercept) != (1, 0) (ITK's rule).
  bool rescale() const;
};

/// Header bytes to read before parse_nifti_header can decide (the NIfTI-2 size).
inline constexpr std::size_t kNiftiMaxHeaderBytes = 540;

/// nullopt when `bytes` do not start a NIfTI-1/NIfTI-2 header (wrong sizeof_hdr or magic).
/// `size` may be 348 for a NIfTI-1 header; a NIfTI-2 header needs 540 bytes.
std::optional<NiftiHeader> parse_nifti_header(const unsigned char* bytes, std::size_t size);

/// Voxel-to-world geometry of a header, in mlseg's [Z, Y, X] LPS convention, as ITK 5's
/// NiftiImageIO reports it (see the file comment). Values are not yet snapped to float. Throws
/// mlseg::Error naming `path` for an sform that is not a rotation times the voxel sizes when there
/// is no qform to fall back on (ITK refuses those files too), and for a NaN or Inf in pixdim[0..3]
/// or in a qform / sform whose code is set.
Geometry nifti_geometry(const NiftiHeader& header, const std::filesystem::path& path = {});

/// Pixels of a single-file NIfTI, as stored on disk (native byte order after swapping).
struct NiftiPixels {
  NiftiHeader header;
  SharedBuffer bytes;  ///< num_elements * element_size bytes in file order (x fastest, then y, z, t)
};

/// Reads the header of a .nii / .nii.gz. nullopt when the file does not start with a NIfTI header
/// (after gunzip). Throws mlseg::Error for a file that cannot be opened or is cut inside its header.
std::optional<NiftiHeader> read_nifti_header(const std::filesystem::path& path);

/// Reads the pixel section of a single-file NIfTI: `num_elements` values of the header's datatype.
/// nullopt when the file is not a single-file NIfTI with a datatype mlseg handles. Throws
/// mlseg::Error (file_truncated / corrupt_pixel_data) when the pixel data is shorter than the
/// header promises or the gzip stream is corrupt.
std::optional<NiftiPixels> read_nifti_pixels(const std::filesystem::path& path, std::int64_t num_elements);

/// What write_nifti stores: an image in [C, Z, Y, X] order (channels become the 4th dimension).
struct NiftiWriteInput {
  std::array<std::int64_t, 3> shape_zyx{1, 1, 1};
  std::int64_t num_channels = 1;
  Geometry geometry;
  int datatype = kNiftiUInt8;
  const void* data = nullptr;  ///< num_channels * Z * Y * X values of `datatype`, contiguous
};

struct NiftiWriteOptions {
  /// gzip level for .nii.gz (libdeflate 1..12; 6 is zlib's default level, which ITK uses).
  int compression_level = 6;
};

/// Writes a .nii or .nii.gz (by the path's ending; .nii.gz is gzip-compressed) atomically: a
/// temporary file renamed into place. NIfTI-1 with qform and sform both set to the geometry
/// (code 1, scanner anatomical, as ITK writes); NIfTI-2 when an extent exceeds NIfTI-1's 32767.
void write_nifti(const std::filesystem::path& path, const NiftiWriteInput& image, const NiftiWriteOptions& options = {});

}  // namespace mlseg
