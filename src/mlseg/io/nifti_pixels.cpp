#include "mlseg/io/nifti_pixels.h"

#include <zlib.h>

#include <cmath>
#include <cstring>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

constexpr int kNifti1HeaderSize = 348;
constexpr const char* kFix = "re-export or re-download the file; check that it opens in a viewer (ITK-SNAP, 3D Slicer)";

int element_size(int datatype) {
  switch (datatype) {
    case 2: case 256: return 1;
    case 4: case 512: return 2;
    case 8: case 16: case 768: return 4;
    case 64: case 1024: case 1280: return 8;
    default: return 0;
  }
}

template <typename T>
T swapped(T value) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(bytes[i], bytes[sizeof(T) - 1 - i]);
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

struct GzFile {
  gzFile handle = nullptr;
  ~GzFile() {
    if (handle) gzclose(handle);
  }
};

// Reads exactly `size` bytes; returns how many were read (fewer at end of data), -1 on stream error.
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

}  // namespace

std::optional<NiftiPixels> read_nifti1_pixels(const std::filesystem::path& path, std::int64_t num_elements) {
  const ErrorLocation where{path.string(), "", ""};
  GzFile file;
  file.handle = gzopen(path.c_str(), "rb");  // reads plain .nii transparently
  if (!file.handle) return std::nullopt;
  unsigned char header[kNifti1HeaderSize];
  if (read_fully(file.handle, header, kNifti1HeaderSize) != kNifti1HeaderSize) return std::nullopt;
  std::int32_t sizeof_hdr;
  std::memcpy(&sizeof_hdr, header, 4);
  bool swap = false;
  if (sizeof_hdr != kNifti1HeaderSize) {
    if (swapped(sizeof_hdr) != kNifti1HeaderSize) return std::nullopt;  // NIfTI-2 or not NIfTI
    swap = true;
  }
  if (std::memcmp(header + 344, "n+1", 4) != 0) return std::nullopt;  // .hdr/.img pairs: ITK
  auto get_i16 = [&](int offset) {
    std::int16_t value;
    std::memcpy(&value, header + offset, 2);
    return swap ? swapped(value) : value;
  };
  auto get_f32 = [&](int offset) {
    float value;
    std::memcpy(&value, header + offset, 4);
    return swap ? swapped(value) : value;
  };
  NiftiPixels pixels;
  pixels.datatype = get_i16(70);
  const int size = element_size(pixels.datatype);
  if (size == 0) return std::nullopt;  // RGB, complex, ...: ITK handles them
  const float vox_offset = get_f32(108);
  if (!(vox_offset >= kNifti1HeaderSize) || vox_offset > 1e9f) return std::nullopt;
  const double slope = get_f32(112), intercept = get_f32(116);
  pixels.rescale = std::isfinite(slope) && slope != 0.0 && std::isfinite(intercept) &&
                   !(slope == 1.0 && intercept == 0.0);
  if (pixels.rescale) {
    pixels.slope = slope;
    pixels.intercept = intercept;
  }
  // Skip extensions up to vox_offset.
  std::int64_t skip = static_cast<std::int64_t>(vox_offset) - kNifti1HeaderSize;
  unsigned char scratch[4096];
  while (skip > 0) {
    const std::int64_t chunk = std::min<std::int64_t>(skip, sizeof scratch);
    if (read_fully(file.handle, scratch, chunk) != chunk) {
      throw Error("the file is truncated: it ends before its pixel data starts", kFix, where).with_code("file_truncated");
    }
    skip -= chunk;
  }
  const std::int64_t bytes = num_elements * size;
  pixels.bytes = torch::empty({bytes}, torch::kUInt8);
  auto* target = pixels.bytes.data_ptr<unsigned char>();
  const std::int64_t got = read_fully(file.handle, target, bytes);
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
  if (swap && size > 1) {
    for (std::int64_t i = 0; i < bytes; i += size) std::reverse(target + i, target + i + size);
  }
  return pixels;
}

}  // namespace mlseg
