#include "mlseg/data/spatial_transform.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "mlseg/core/error.h"
#include "mlseg/data/mirror.h"
#include "mlseg/data/resample_kernels.h"
#include "mlseg/metrics/code_words.h"

namespace mlseg {
namespace {

using Shape = std::array<std::int64_t, 3>;
using detail::floor_to_int;
using Matrix = std::array<std::array<double, 3>, 3>;

constexpr double kPi = 3.14159265358979323846;

double degrees_to_radians(double degrees) { return degrees / 180.0 * kPi; }

Matrix multiply(const Matrix& a, const Matrix& b) {
  Matrix r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) r[i][j] += a[i][k] * b[k][j];
  return r;
}

// batchgenerators' create_matrix_rotation_{x,y,z}_3d, axis 0..2.
Matrix rotation_about(int axis, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  if (axis == 0) return Matrix{{{1, 0, 0}, {0, c, -s}, {0, s, c}}};
  if (axis == 1) return Matrix{{{c, 0, s}, {0, 1, 0}, {-s, 0, c}}};
  return Matrix{{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}};
}

// Row vector times matrix, as batchgenerators' rotate_coords_3d (np.dot(coords, rot)).
std::array<double, 3> row_times(const std::array<double, 3>& v, const Matrix& m) {
  std::array<double, 3> r{};
  for (int j = 0; j < 3; ++j)
    for (int i = 0; i < 3; ++i) r[j] += v[i] * m[i][j];
  return r;
}

// Integer crop origin nnU-Net's crop_tensor uses for a centred patch: floor(S/2) - floor(P/2).
std::int64_t centre_crop_offset(std::int64_t input_size, std::int64_t patch_size) {
  return input_size / 2 - patch_size / 2;
}

void require_sample(const torch::Tensor& image, const CodeVolume& codes, const Shape& patch_size_zyx) {
  if (!image.defined() || image.dim() != 4 || image.scalar_type() != torch::kFloat32 || !image.is_contiguous() ||
      !image.device().is_cpu()) {
    throw Error("augmentation input image must be a contiguous float32 CPU tensor [C, Z, Y, X]",
                "convert the patch with .to(torch::kFloat32).contiguous() before augmenting");
  }
  detail::require_code_volume(codes, "augmentation labels");
  if (image.size(0) < 1 || codes.words.size(0) < 1) {
    throw Error("augmentation input has no image channel or no label code word",
                "pass at least one image channel and the case's code volume");
  }
  for (int axis = 0; axis < 3; ++axis) {
    if (codes.words.size(axis + 1) != image.size(axis + 1)) {
      throw Error("augmentation image and label code volume differ in spatial shape",
                  "cut image and labels with the same box (both [.., Z, Y, X])");
    }
    if (patch_size_zyx[axis] < 1) {
      throw Error("augmentation patch size must be at least 1 on every axis", "check the plan's patch_size");
    }
  }
}

// Rows ahead the crop requests from memory (best of 2-8 on the 128^3-from-205^3 crop: -15 %).
constexpr std::int64_t kCropRowsAhead = 8;

// Integer centre crop with padding (nnU-Net's crop_tensor), for `planes` [Z, Y, X] volumes,
// flipped along the axes in `mirror` on the way (output row (z, y) reads the mirror row, an
// x-flipped row is copied reversed).
template <typename T>
void crop_planes(const T* src, const Shape& in, T* dst, const Shape& out, const Shape& offset, std::int64_t planes,
                 T outside, const std::array<bool, 3>& mirror) {
  const std::int64_t in_volume = in[0] * in[1] * in[2], out_volume = out[0] * out[1] * out[2];
  const std::int64_t x_begin = std::clamp<std::int64_t>(-offset[2], 0, out[2]);
  const std::int64_t x_end = std::clamp<std::int64_t>(in[2] - offset[2], x_begin, out[2]);
  std::vector<T> unflipped(mirror[2] ? static_cast<std::size_t>(out[2]) : 0);
  for (std::int64_t p = 0; p < planes; ++p) {
    for (std::int64_t oz = 0; oz < out[0]; ++oz) {
      for (std::int64_t oy = 0; oy < out[1]; ++oy) {
        T* const row = dst + p * out_volume + (oz * out[1] + oy) * out[2];
        const std::int64_t sz = (mirror[0] ? out[0] - 1 - oz : oz) + offset[0];
        const std::int64_t sy = (mirror[1] ? out[1] - 1 - oy : oy) + offset[1];
        if (sz < 0 || sz >= in[0] || sy < 0 || sy >= in[1]) {
          std::fill_n(row, out[2], outside);
          continue;
        }
        {
          // Row starts jump across the input, which the hardware prefetcher does not follow:
          // request the row kCropRowsAhead further on.
          const std::int64_t ahead_y = sy + (mirror[1] ? -kCropRowsAhead : kCropRowsAhead);
          if (ahead_y >= 0 && ahead_y < in[1]) {
            const char* ahead = reinterpret_cast<const char*>(src + p * in_volume + (sz * in[1] + ahead_y) * in[2] +
                                                              x_begin + offset[2]);
            const std::int64_t bytes = (x_end - x_begin) * static_cast<std::int64_t>(sizeof(T));
            for (std::int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(ahead + b);
          }
        }
        T* const target = mirror[2] ? unflipped.data() : row;
        std::fill_n(target, x_begin, outside);
        const T* source = src + p * in_volume + (sz * in[1] + sy) * in[2] + x_begin + offset[2];
        std::memcpy(target + x_begin, source, static_cast<std::size_t>(x_end - x_begin) * sizeof(T));
        std::fill(target + x_end, target + out[2], outside);
        if (mirror[2]) reverse_copy_row(target, out[2], row);
      }
    }
  }
}

}  // namespace

AugmentationGeometry augmentation_geometry(const Shape& patch_size_zyx, const SpatialTransformOptions& options) {
  AugmentationGeometry geometry;
  const auto [pz, py, px] = patch_size_zyx;
  if (pz == 1) {
    geometry.mode = AugmentationMode::planar_2d;
    const double aspect = static_cast<double>(std::max(py, px)) / static_cast<double>(std::max<std::int64_t>(1, std::min(py, px)));
    geometry.max_rotation_rad = degrees_to_radians(aspect > options.elongated_2d_aspect_ratio()
                                                       ? options.max_rotation_deg_2d_elongated()
                                                       : options.max_rotation_deg_in_plane());
    geometry.mirror_axes = {1, 2};
    return geometry;
  }
  const double anisotropy = static_cast<double>(std::max({pz, py, px})) / static_cast<double>(pz);
  geometry.mode = anisotropy > options.dummy_2d_anisotropy_threshold() ? AugmentationMode::dummy_2d
                                                                       : AugmentationMode::volume_3d;
  geometry.max_rotation_rad = degrees_to_radians(geometry.mode == AugmentationMode::dummy_2d
                                                     ? options.max_rotation_deg_in_plane()
                                                     : options.max_rotation_deg_3d());
  geometry.mirror_axes = {0, 1, 2};
  return geometry;
}

Shape initial_patch_size(const Shape& patch_size_zyx, const SpatialTransformOptions& options) {
  const AugmentationGeometry geometry = augmentation_geometry(patch_size_zyx, options);
  const double angle = std::min(geometry.max_rotation_rad, kPi / 2);
  std::array<double, 3> corner{static_cast<double>(patch_size_zyx[0]), static_cast<double>(patch_size_zyx[1]),
                               static_cast<double>(patch_size_zyx[2])};
  std::array<double, 3> extent = corner;
  if (geometry.mode == AugmentationMode::volume_3d) {
    for (int axis = 0; axis < 3; ++axis) {
      const auto rotated = row_times(corner, rotation_about(axis, angle));
      for (int i = 0; i < 3; ++i) extent[i] = std::max(extent[i], std::abs(rotated[i]));
    }
  } else {
    // rotate_coords_2d on (y, x): np.dot(coords, [[c, -s], [s, c]]).
    const double c = std::cos(angle), s = std::sin(angle);
    const double y = corner[1] * c + corner[2] * s, x = -corner[1] * s + corner[2] * c;
    extent[1] = std::max(extent[1], std::abs(y));
    extent[2] = std::max(extent[2], std::abs(x));
  }
  Shape size{};
  for (int i = 0; i < 3; ++i) size[i] = static_cast<std::int64_t>(extent[i] / options.initial_patch_scale_bound());
  if (geometry.mode != AugmentationMode::volume_3d) size[0] = patch_size_zyx[0];
  return size;
}

SpatialParameters sample_spatial_parameters(const AugmentationGeometry& geometry, const SpatialTransformOptions& options,
                                            SplitMix64& rng) {
  if (options.elastic_probability() > 0.0) {
    throw Error("elastic deformation is not supported by mlseg's spatial transform",
                "set SpatialTransformOptions::elastic_probability to 0 (nnU-Net's default also leaves it off)");
  }
  SpatialParameters parameters;
  parameters.rotated = rng.uniform() < options.rotation_probability();
  parameters.scaled = rng.uniform() < options.scaling_probability();
  if (parameters.rotated) {
    const int axes = geometry.mode == AugmentationMode::volume_3d ? 3 : 1;
    for (int axis = 0; axis < axes; ++axis) {
      parameters.angles_rad[axis] = rng.uniform(-geometry.max_rotation_rad, geometry.max_rotation_rad);
    }
  }
  if (parameters.scaled) parameters.scale = rng.uniform(options.min_scale(), options.max_scale());
  return parameters;
}

SpatialOutput apply_spatial_transform(const torch::Tensor& image, const CodeVolume& codes, const Shape& patch_size_zyx,
                                      const AugmentationGeometry& geometry, const SpatialParameters& parameters,
                                      const SpatialTransformOptions& options, const std::array<bool, 3>& mirror_zyx) {
  require_sample(image, codes, patch_size_zyx);
  const Shape in{image.size(1), image.size(2), image.size(3)};
  const Shape& out = patch_size_zyx;
  Shape offset{};
  for (int i = 0; i < 3; ++i) offset[i] = centre_crop_offset(in[i], out[i]);

  SpatialOutput result;
  result.image = torch::empty({image.size(0), out[0], out[1], out[2]}, image.options());
  result.codes.num_channels = codes.num_channels;
  result.codes.words = torch::empty({codes.words.size(0), out[0], out[1], out[2]}, codes.words.options());

  if (parameters.is_identity()) {
    crop_planes(image.data_ptr<float>(), in, result.image.data_ptr<float>(), out, offset, image.size(0),
                options.image_outside_value(), mirror_zyx);
    detail::with_code_word_type(codes, [&](auto word) {
      using Word = decltype(word);
      crop_planes(static_cast<const Word*>(codes.words.data_ptr()), in, static_cast<Word*>(result.codes.words.data_ptr()),
                  out, offset, codes.words.size(0), Word{0}, mirror_zyx);
    });
    return result;
  }

  // Source offset of output voxel o (relative to the patch centre q = o - (P-1)/2) is q @ (R S),
  // as batchgeneratorsv2 applies grid @ affine with affine = Rz Ry Rx S.
  if (in[0] * in[1] * in[2] >= (std::int64_t{1} << 31)) {
    throw Error("augmentation input of " + std::to_string(in[0] * in[1] * in[2]) +
                    " voxels is too large for the spatial transform (at most 2^31 - 1 per channel)",
                "cut the sample at initial_patch_size(patch_size) instead of passing the whole case");
  }
  const bool planar = geometry.mode != AugmentationMode::volume_3d;
  Matrix affine{};
  const double scale = parameters.scale;
  if (planar) {
    const double c = std::cos(parameters.angles_rad[0]), s = std::sin(parameters.angles_rad[0]);
    affine = Matrix{{{1, 0, 0}, {0, c * scale, -s * scale}, {0, s * scale, c * scale}}};
  } else {
    const Matrix rotation = multiply(rotation_about(2, parameters.angles_rad[2]),
                                     multiply(rotation_about(1, parameters.angles_rad[1]),
                                              rotation_about(0, parameters.angles_rad[0])));
    const Matrix scaling{{{scale, 0, 0}, {0, scale, 0}, {0, 0, scale}}};
    affine = multiply(rotation, scaling);
  }
  detail::ResampleJob job;
  job.image = image.data_ptr<float>();
  job.channels = image.size(0);
  job.codes = codes.words.data_ptr();
  job.words = codes.words.size(0);
  job.in = in;
  job.out = out;
  job.image_out = result.image.data_ptr<float>();
  job.codes_out = result.codes.words.data_ptr();
  job.label_threshold = options.label_interpolation() == LabelInterpolation::classes ? detail::kVoteWholeCodes
                                                                                     : static_cast<float>(options.label_threshold());
  job.nearest_labels = options.label_interpolation() == LabelInterpolation::nearest;
  job.outside = options.image_outside_value();
  job.plane_offset_z = offset[0];
  std::array<double, 3> patch_centre{}, source_centre{};
  for (int i = 0; i < 3; ++i) {
    patch_centre[i] = (static_cast<double>(out[i]) - 1.0) / 2.0;
    source_centre[i] = static_cast<double>(offset[i]) + patch_centre[i];
  }
  job.grid.step = affine;  // d source / d o_j is row j of the affine (q @ affine)
  const auto centre_offset = row_times(patch_centre, affine);
  for (int i = 0; i < 3; ++i) job.grid.origin[i] = source_centre[i] - centre_offset[i];

  bool diagonal = true;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) diagonal = diagonal && (i == j || affine[i][j] == 0.0);
  // Mirroring output axis j reads output voxel P_j - 1 - o_j: the general kernel takes it as part
  // of the grid (origin moved to the far end, step negated), except the slice axis of the planar
  // modes, which it does not resample; the separable kernel's steps stay positive. What is not
  // folded in is flipped after resampling.
  std::array<bool, 3> flip_after = mirror_zyx;
  const bool separable = diagonal && options.separable_when_unrotated();
  if (!separable) {
    for (int j = planar ? 1 : 0; j < 3; ++j) {
      if (!mirror_zyx[j]) continue;
      for (int i = 0; i < 3; ++i) {
        job.grid.origin[i] += static_cast<double>(out[j] - 1) * job.grid.step[j][i];
        job.grid.step[j][i] = -job.grid.step[j][i];
      }
      flip_after[j] = false;
    }
  }
  if (separable) {
    detail::separable_resample_kernel(job, codes.view().word, planar);
  } else {
    detail::general_resample_kernel(job, codes.view().word, planar);
  }
  mirror_in_place(result.image, flip_after);
  mirror_in_place(result.codes, flip_after);
  return result;
}

}  // namespace mlseg
