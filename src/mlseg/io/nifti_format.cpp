#include "mlseg/io/nifti_format.h"

#include "mlseg/io/nifti_internal.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <vector>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"

namespace mlseg {
namespace {

constexpr std::int32_t kNifti1HeaderSize = 348;
constexpr std::int32_t kNifti2HeaderSize = 540;
constexpr const char* kFix = "re-export or re-download the file; check that it opens in a viewer (ITK-SNAP, 3D Slicer)";

template <typename T>
T swapped(T value) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  std::reverse(bytes, bytes + sizeof(T));
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

// Reads little- or big-endian fields of one header.
struct FieldReader {
  const unsigned char* bytes;
  bool swap;

  template <typename T>
  T get(std::size_t offset) const {
    T value;
    std::memcpy(&value, bytes + offset, sizeof(T));
    return swap ? swapped(value) : value;
  }
};

// The quaternion, its offset and the sform: the same field order in NIfTI-1 (float) and NIfTI-2
// (double), from `quatern_offset` (quatern_b) and `srow_offset` (srow_x[0]).
template <typename Real>
void read_transforms(const FieldReader& field, std::size_t quatern_offset, std::size_t srow_offset, NiftiHeader& header) {
  double* quaternion_fields[6] = {&header.quatern_b, &header.quatern_c, &header.quatern_d,
                                  &header.qoffset_x, &header.qoffset_y, &header.qoffset_z};
  for (std::size_t i = 0; i < 6; ++i) *quaternion_fields[i] = field.get<Real>(quatern_offset + i * sizeof(Real));
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t c = 0; c < 4; ++c) header.srow[r][c] = field.get<Real>(srow_offset + (4 * r + c) * sizeof(Real));
  }
}

double units_to_mm(int xyzt_units) {
  switch (xyzt_units & 7) {
    case 1: return 1000.0;  // metre
    case 3: return 0.001;   // micron
    default: return 1.0;    // mm or unknown
  }
}

using Matrix34 = std::array<std::array<double, 4>, 3>;

// nifti1_io's quaternion -> matrix (RAS), with its rules for a non-unit quaternion, non-positive
// voxel sizes and qfac (pixdim[0] < 0 flips the third axis).
Matrix34 quaternion_matrix(const NiftiHeader& header) {
  double b = header.quatern_b, c = header.quatern_c, d = header.quatern_d;
  double a = 1.0 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    a = 1.0 / std::sqrt(b * b + c * c + d * d);
    b *= a;
    c *= a;
    d *= a;
    a = 0.0;
  } else {
    a = std::sqrt(a);
  }
  const double xd = header.pixdim[1] > 0 ? header.pixdim[1] : 1.0;
  const double yd = header.pixdim[2] > 0 ? header.pixdim[2] : 1.0;
  double zd = header.pixdim[3] > 0 ? header.pixdim[3] : 1.0;
  if (header.pixdim[0] < 0) zd = -zd;
  Matrix34 m{};
  m[0] = {(a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, header.qoffset_x};
  m[1] = {2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, header.qoffset_y};
  m[2] = {2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, header.qoffset_z};
  return m;
}

// ITK's test that an sform is a rotation times the voxel sizes: its columns divided by pixdim
// must be orthonormal. Measured against ITK 5.2 on hand-made headers: a relative length error of
// 1e-4 passes and 1e-3 fails; a column cross term of 1.3e-5 passes and 1.3e-4 fails.
constexpr double kSformLengthTolerance = 5e-4;
constexpr double kSformOrthogonalityTolerance = 5e-5;

bool sform_is_rigid(const NiftiHeader& header) {
  const Matrix34& m = header.srow;
  std::array<std::array<double, 3>, 3> columns{};
  for (int j = 0; j < 3; ++j) {
    const double spacing = header.pixdim[j + 1] > 0 ? header.pixdim[j + 1] : 1.0;
    for (int i = 0; i < 3; ++i) columns[j][i] = m[i][j] / spacing;
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = i; j < 3; ++j) {
      const double dot = columns[i][0] * columns[j][0] + columns[i][1] * columns[j][1] + columns[i][2] * columns[j][2];
      const bool ok = i == j ? std::abs(dot - 1.0) <= 2 * kSformLengthTolerance : std::abs(dot) <= kSformOrthogonalityTolerance;
      if (!ok || !std::isfinite(dot)) return false;
    }
  }
  return true;
}

using Matrix33 = std::array<std::array<double, 3>, 3>;

Matrix33 inverse_transpose(const Matrix33& a) {
  const double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                     a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  Matrix33 cofactor{};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const int i1 = (i + 1) % 3, i2 = (i + 2) % 3, j1 = (j + 1) % 3, j2 = (j + 2) % 3;
      cofactor[i][j] = (a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1]) / det;
    }
  }
  return cofactor;  // inverse transpose = cofactor matrix / determinant
}

// The orthogonal matrix closest to `a` (polar decomposition by Newton's iteration), as
// nifti1_io's mat44_to_quatern finds it before taking the quaternion.
Matrix33 closest_rotation(Matrix33 a) {
  for (int iteration = 0; iteration < 100; ++iteration) {
    const Matrix33 b = inverse_transpose(a);
    double change = 0;
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        const double next = 0.5 * (a[i][j] + b[i][j]);
        change += std::abs(next - a[i][j]);
        a[i][j] = next;
      }
    }
    if (change < 1e-15) break;
  }
  return a;
}

struct GzFile {
  gzFile handle = nullptr;
  ~GzFile() {
    if (handle) gzclose(handle);
  }
};

// Reads up to `size` bytes; returns how many were read (fewer at end of data), -1 on stream error.
std::int64_t read_fully(gzFile file, unsigned char* target, std::int64_t size) {
  std::int64_t done = 0;
  while (done < size) {
    const auto chunk = static_cast<unsigned>(std::min<std::int64_t>(size - done, 1 << 30));
    const int got = gzread(file, target + done, chunk);
    if (got < 0) return -1;
    if (got == 0) break;
    done += got;
  }
  return done;
}

void swap_elements(unsigned char* bytes, std::int64_t count, int size) {
  if (size <= 1) return;
  for (std::int64_t i = 0; i < count; i += size) std::reverse(bytes + i, bytes + i + size);
}

// A header whose pixels mlseg can read: single file, handled datatype, sane vox_offset.
bool readable_pixels(const NiftiHeader& header) {
  return header.single_file && nifti_element_size(header.datatype) > 0 && header.vox_offset >= header.header_size() &&
         header.vox_offset <= (std::int64_t{1} << 40);
}

// Fast path for .nii.gz: the whole gzip member inflated at once by libdeflate (2-3x zlib's speed,
// CRC-checked). nullopt when anything is unusual; the streaming zlib path then decides.
std::optional<NiftiPixels> read_gz_whole(const std::filesystem::path& path, std::int64_t num_elements) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) return std::nullopt;
  const std::streamoff file_size = file.tellg();
  if (file_size < 18) return std::nullopt;
  std::vector<unsigned char> compressed(static_cast<std::size_t>(file_size));
  file.seekg(0);
  if (!file.read(reinterpret_cast<char*>(compressed.data()), file_size)) return std::nullopt;
  if (compressed[0] != 0x1f || compressed[1] != 0x8b) return std::nullopt;
  std::uint32_t isize;  // uncompressed size mod 2^32, from the gzip trailer
  std::memcpy(&isize, compressed.data() + compressed.size() - 4, 4);
  // The expected size is known only after the header: bound it by what the header could promise.
  const std::int64_t minimum = kNifti1HeaderSize + num_elements;
  if (isize < static_cast<std::uint32_t>(std::min<std::int64_t>(minimum, 0xffffffffLL)) ||
      static_cast<std::int64_t>(isize) > kNifti2HeaderSize + 8 * num_elements + (1 << 20)) {
    return std::nullopt;
  }
  SharedBuffer buffer = SharedBuffer::allocate(static_cast<std::int64_t>(isize));
  libdeflate_decompressor* decompressor = libdeflate_alloc_decompressor();
  if (!decompressor) return std::nullopt;
  std::size_t used_in = 0, produced = 0;
  const libdeflate_result status = libdeflate_gzip_decompress_ex(
      decompressor, compressed.data(), compressed.size(), buffer.data, static_cast<std::size_t>(isize), &used_in,
      &produced);
  libdeflate_free_decompressor(decompressor);
  if (status != LIBDEFLATE_SUCCESS || used_in != compressed.size() || produced != isize) return std::nullopt;
  auto header = parse_nifti_header(buffer.data, produced);
  if (!header || !readable_pixels(*header)) return std::nullopt;
  const int size = nifti_element_size(header->datatype);
  const std::int64_t bytes = num_elements * size;
  if (header->vox_offset + bytes > static_cast<std::int64_t>(produced)) return std::nullopt;
  NiftiPixels pixels;
  pixels.header = *header;
  pixels.bytes = buffer;
  pixels.bytes.data += header->vox_offset;
  pixels.bytes.size = bytes;
  swap_elements(pixels.bytes.data, bytes, header->byte_swapped ? size : 1);
  return pixels;
}

// Reads and parses the header from an open stream; nullopt when it is not NIfTI.
std::optional<NiftiHeader> read_header_from(gzFile file, const ErrorLocation& where) {
  unsigned char bytes[kNiftiMaxHeaderBytes];
  const std::int64_t got = read_fully(file, bytes, kNifti1HeaderSize);
  if (got < 0) return std::nullopt;
  if (got < 4) return std::nullopt;
  std::int32_t sizeof_hdr;
  std::memcpy(&sizeof_hdr, bytes, 4);
  const bool version2 = sizeof_hdr == kNifti2HeaderSize || swapped(sizeof_hdr) == kNifti2HeaderSize;
  std::int64_t have = got;
  if (version2 && got == kNifti1HeaderSize) {
    const std::int64_t more = read_fully(file, bytes + kNifti1HeaderSize, kNifti2HeaderSize - kNifti1HeaderSize);
    if (more > 0) have += more;
  }
  const std::int64_t needed = version2 ? kNifti2HeaderSize : kNifti1HeaderSize;
  if (have < needed) {
    if (sizeof_hdr == kNifti1HeaderSize || swapped(sizeof_hdr) == kNifti1HeaderSize || version2) {
      throw Error("the file is truncated: it ends inside its " + std::to_string(needed) + "-byte NIfTI header", kFix, where)
          .with_code("file_truncated");
    }
    return std::nullopt;
  }
  return parse_nifti_header(bytes, static_cast<std::size_t>(have));
}

}  // namespace

namespace detail {

bool ends_with_gz(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  return name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0;
}


Quaternion quaternion_of(std::array<std::array<double, 3>, 3> r) {
  Quaternion q;
  const double det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
                     r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  if (det < 0) {
    q.qfac = -1;
    for (int i = 0; i < 3; ++i) r[i][2] = -r[i][2];
  }
  double a = r[0][0] + r[1][1] + r[2][2] + 1.0;
  double b, c, d;
  if (a > 0.5) {
    a = 0.5 * std::sqrt(a);
    b = 0.25 * (r[2][1] - r[1][2]) / a;
    c = 0.25 * (r[0][2] - r[2][0]) / a;
    d = 0.25 * (r[1][0] - r[0][1]) / a;
  } else {
    const double xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
    const double yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
    const double zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1.0) {
      b = 0.5 * std::sqrt(xd);
      c = 0.25 * (r[0][1] + r[1][0]) / b;
      d = 0.25 * (r[0][2] + r[2][0]) / b;
      a = 0.25 * (r[2][1] - r[1][2]) / b;
    } else if (yd > 1.0) {
      c = 0.5 * std::sqrt(yd);
      b = 0.25 * (r[0][1] + r[1][0]) / c;
      d = 0.25 * (r[1][2] + r[2][1]) / c;
      a = 0.25 * (r[0][2] - r[2][0]) / c;
    } else {
      d = 0.5 * std::sqrt(zd);
      b = 0.25 * (r[0][2] + r[2][0]) / d;
      c = 0.25 * (r[1][2] + r[2][1]) / d;
      a = 0.25 * (r[1][0] - r[0][1]) / d;
    }
    if (a < 0) {  // the quaternion with a >= 0 (a is implied by b, c, d)
      b = -b;
      c = -c;
      d = -d;
    }
  }
  q.b = b;
  q.c = c;
  q.d = d;
  return q;
}

}  // namespace detail

int nifti_element_size(int datatype) {
  switch (datatype) {
    case kNiftiUInt8: case kNiftiInt8: return 1;
    case kNiftiInt16: case kNiftiUInt16: return 2;
    case kNiftiInt32: case kNiftiFloat32: case kNiftiUInt32: return 4;
    case kNiftiFloat64: case kNiftiInt64: case kNiftiUInt64: return 8;
    default: return 0;
  }
}

std::string nifti_datatype_name(int datatype) {
  switch (datatype) {
    case kNiftiUInt8: return "uint8";
    case kNiftiInt8: return "int8";
    case kNiftiInt16: return "int16";
    case kNiftiUInt16: return "uint16";
    case kNiftiInt32: return "int32";
    case kNiftiUInt32: return "uint32";
    case kNiftiInt64: return "int64";
    case kNiftiUInt64: return "uint64";
    case kNiftiFloat32: return "float32";
    case kNiftiFloat64: return "float64";
    default: return "datatype " + std::to_string(datatype);
  }
}

bool NiftiHeader::rescale() const {
  return std::isfinite(scl_slope) && scl_slope != 0.0 && std::isfinite(scl_inter) &&
         !(scl_slope == 1.0 && scl_inter == 0.0);
}

std::optional<NiftiHeader> parse_nifti_header(const unsigned char* bytes, std::size_t size) {
  if (size < static_cast<std::size_t>(kNifti1HeaderSize)) return std::nullopt;
  std::int32_t sizeof_hdr;
  std::memcpy(&sizeof_hdr, bytes, 4);
  NiftiHeader header;
  if (sizeof_hdr == kNifti1HeaderSize || sizeof_hdr == kNifti2HeaderSize) {
    header.byte_swapped = false;
  } else if (swapped(sizeof_hdr) == kNifti1HeaderSize || swapped(sizeof_hdr) == kNifti2HeaderSize) {
    header.byte_swapped = true;
    sizeof_hdr = swapped(sizeof_hdr);
  } else {
    return std::nullopt;
  }
  const FieldReader field{bytes, header.byte_swapped};
  if (sizeof_hdr == kNifti1HeaderSize) {
    const bool single = std::memcmp(bytes + 344, "n+1", 4) == 0;
    if (!single && std::memcmp(bytes + 344, "ni1", 4) != 0) return std::nullopt;  // Analyze 7.5: not NIfTI
    header.version = 1;
    header.single_file = single;
    for (int i = 0; i < 8; ++i) header.dim[i] = field.get<std::int16_t>(40 + 2 * i);
    header.datatype = field.get<std::int16_t>(70);
    for (int i = 0; i < 8; ++i) header.pixdim[i] = field.get<float>(76 + 4 * i);
    const float vox_offset = field.get<float>(108);
    header.vox_offset = std::isfinite(vox_offset) && vox_offset >= 0 && vox_offset < 1e12f ? static_cast<std::int64_t>(vox_offset) : -1;
    header.scl_slope = field.get<float>(112);
    header.scl_inter = field.get<float>(116);
    header.xyzt_units = bytes[123];
    header.qform_code = field.get<std::int16_t>(252);
    header.sform_code = field.get<std::int16_t>(254);
    read_transforms<float>(field, 256, 280, header);
    return header;
  }
  if (size < static_cast<std::size_t>(kNifti2HeaderSize)) return std::nullopt;
  const bool single = std::memcmp(bytes + 4, "n+2\0\r\n\032\n", 8) == 0;
  if (!single && std::memcmp(bytes + 4, "ni2\0\r\n\032\n", 8) != 0) return std::nullopt;
  header.version = 2;
  header.single_file = single;
  header.datatype = field.get<std::int16_t>(12);
  for (int i = 0; i < 8; ++i) header.dim[i] = field.get<std::int64_t>(16 + 8 * i);
  for (int i = 0; i < 8; ++i) header.pixdim[i] = field.get<double>(104 + 8 * i);
  header.vox_offset = field.get<std::int64_t>(168);
  header.scl_slope = field.get<double>(176);
  header.scl_inter = field.get<double>(184);
  header.qform_code = field.get<std::int32_t>(344);
  header.sform_code = field.get<std::int32_t>(348);
  read_transforms<double>(field, 352, 400, header);
  header.xyzt_units = field.get<std::int32_t>(500);
  return header;
}

Geometry nifti_geometry(const NiftiHeader& header, const std::filesystem::path& path) {
  // A NaN or Inf among the values a transform is built from has no geometry (and ITK's reader
  // abort()s on it in vnl's SVD), and neither has a value beyond any scanner's extent (ITK's
  // single-precision SVD overflows on it and never returns): both found by tests/fuzz/nifti_fuzz.
  // dim[0] outside 1..7 in the byte order sizeof_hdr gives: nifti1_io picks the byte order by
  // dim[0] first, so it reads such a header in the other order, values this check never saw.
  if (header.dim[0] < 1 || header.dim[0] > 7) {
    throw Error("the header's dim[0] is " + std::to_string(header.dim[0]) +
                    " (1-7 expected): its byte order is inconsistent (sizeof_hdr and dim[0] disagree)",
                "re-save the image with a NIfTI writer", {path.string(), "", ""})
        .with_code("implausible_header");
  }
  constexpr double kMaxGeometryMagnitude = 1e9;  // mm: a thousand kilometres
  const auto plausible = [](double value) { return std::isfinite(value) && std::abs(value) <= kMaxGeometryMagnitude; };
  bool finite = plausible(header.pixdim[0]) && plausible(header.pixdim[1]) && plausible(header.pixdim[2]) &&
                plausible(header.pixdim[3]);
  if (header.qform_code != 0) {
    for (const double value : {header.quatern_b, header.quatern_c, header.quatern_d, header.qoffset_x,
                               header.qoffset_y, header.qoffset_z}) {
      finite = finite && plausible(value);
    }
  }
  if (header.sform_code != 0) {
    for (const auto& row : header.srow) {
      for (const double value : row) finite = finite && plausible(value);
    }
  }
  if (!finite) {
    throw Error("the header's geometry holds a NaN or infinite value, or one larger than 1e9 mm (pixdim, qform or sform)",
                "re-save the image with a valid orientation and voxel size", {path.string(), "", ""})
        .with_code("implausible_header");
  }
  constexpr int kXformScannerAnat = 1;
  const auto to_float = [](double value) { return static_cast<double>(static_cast<float>(value)); };
  // ITK prefers a scanner-anatomical sform, or any sform when there is no qform.
  const bool sform_preferred = header.sform_code == kXformScannerAnat || (header.sform_code > 0 && header.qform_code <= 0);
  Matrix34 m{};
  bool have_matrix = true;
  if (sform_preferred && sform_is_rigid(header)) {
    // ITK keeps the sform's rotation only: nifti1_io's matrix -> quaternion (columns normalised, closest
    // rotation) -> matrix, in float.
    Matrix33 rotation{};
    NiftiHeader rebuilt = header;
    for (int j = 0; j < 3; ++j) {
      const double norm = std::sqrt(header.srow[0][j] * header.srow[0][j] + header.srow[1][j] * header.srow[1][j] +
                                    header.srow[2][j] * header.srow[2][j]);
      for (int i = 0; i < 3; ++i) rotation[i][j] = header.srow[i][j] / norm;
      rebuilt.pixdim[j + 1] = to_float(norm);
    }
    const detail::Quaternion q = detail::quaternion_of(closest_rotation(rotation));
    rebuilt.quatern_b = to_float(q.b);
    rebuilt.quatern_c = to_float(q.c);
    rebuilt.quatern_d = to_float(q.d);
    rebuilt.pixdim[0] = q.qfac;
    rebuilt.qoffset_x = header.srow[0][3];
    rebuilt.qoffset_y = header.srow[1][3];
    rebuilt.qoffset_z = header.srow[2][3];
    m = quaternion_matrix(rebuilt);
  } else if (sform_preferred && header.qform_code <= 0) {
    throw Error("the sform is not a rotation times the voxel sizes (it shears or scales), and there is no qform to "
                "fall back on; ITK refuses such files too",
                "re-save the image with an orthonormal orientation (e.g. resample it in 3D Slicer, or set a qform)",
                {path.string(), "", ""})
        .with_code("unreadable_header");
  } else if (header.qform_code > 0) {
    m = quaternion_matrix(header);
  } else {
    have_matrix = false;  // neither transform: ITK reports an identity direction and a zero origin
  }
  for (auto& row : m) {
    for (double& value : row) value = to_float(value);  // nifti1_io's matrices are float
  }
  const double scale = units_to_mm(header.xyzt_units);
  Geometry geometry;
  const int spatial = static_cast<int>(std::clamp<std::int64_t>(header.dim[0], 1, 3));
  for (int axis = 0; axis < spatial; ++axis) {
    const double pixdim = header.pixdim[axis + 1];
    geometry.spacing_zyx_mm[2 - axis] = (pixdim == 0.0 ? 1.0 : pixdim) * scale;
    if (!have_matrix) continue;
    // Direction columns normalised within the image's own dimensions (a 2D image uses the 2x2 block).
    double norm = 0;
    for (int row = 0; row < spatial; ++row) norm += m[row][axis] * m[row][axis];
    norm = std::sqrt(norm);
    geometry.origin_zyx_mm[2 - axis] = (axis < 2 ? -1.0 : 1.0) * m[axis][3];
    for (int row = 0; row < spatial; ++row) {
      const double flip = row < 2 ? -1.0 : 1.0;
      geometry.direction_zyx[2 - row][2 - axis] = norm > 0 ? flip * m[row][axis] / norm : (row == axis ? 1.0 : 0.0);
    }
  }
  return geometry;
}

std::optional<NiftiHeader> read_nifti_header(const std::filesystem::path& path) {
  const ErrorLocation where{path.string(), "", ""};
  GzFile file;
  file.handle = gzopen(path.c_str(), "rb");  // reads plain .nii transparently
  if (!file.handle) throw Error("cannot open the file", "check that it exists and is readable", where);
  return read_header_from(file.handle, where);
}

std::optional<NiftiPixels> read_nifti_pixels(const std::filesystem::path& path, std::int64_t num_elements) {
  const ErrorLocation where{path.string(), "", ""};
  if (detail::ends_with_gz(path)) {
    if (auto pixels = read_gz_whole(path, num_elements)) return pixels;
  }
  GzFile file;
  file.handle = gzopen(path.c_str(), "rb");
  if (!file.handle) return std::nullopt;
  gzbuffer(file.handle, 1 << 17);
  auto header = read_header_from(file.handle, where);
  if (!header || !readable_pixels(*header)) return std::nullopt;
  NiftiPixels pixels;
  pixels.header = *header;
  const int size = nifti_element_size(header->datatype);
  // Skip extensions up to vox_offset.
  std::int64_t skip = header->vox_offset - header->header_size();
  unsigned char scratch[4096];
  while (skip > 0) {
    const std::int64_t chunk = std::min<std::int64_t>(skip, sizeof scratch);
    if (read_fully(file.handle, scratch, chunk) != chunk) {
      throw Error("the file is truncated: it ends before its pixel data starts", kFix, where).with_code("file_truncated");
    }
    skip -= chunk;
  }
  const std::int64_t bytes = num_elements * size;
  pixels.bytes = SharedBuffer::allocate(bytes);
  const std::int64_t got = read_fully(file.handle, pixels.bytes.data, bytes);
  if (got < 0) {
    int code = 0;
    const char* reason = gzerror(file.handle, &code);
    throw Error(std::string("the compressed pixel data is corrupt (") + (reason ? reason : "zlib error") + ")", kFix, where)
        .with_code("corrupt_pixel_data");
  }
  if (got < bytes) {
    throw Error("the file is truncated: it holds " + std::to_string(got) + " of the " + std::to_string(bytes) +
                    " pixel bytes its header promises",
                kFix, where)
        .with_code("file_truncated");
  }
  swap_elements(pixels.bytes.data, bytes, header->byte_swapped ? size : 1);
  return pixels;
}

}  // namespace mlseg
