// resample_image: separable passes, one per axis whose size changes (x and y plane by plane, then
// z). Each pass treats the data as columns along its axis and works on tens to hundreds of columns
// at a time, so that the recursive spline prefilter and the interpolation run over contiguous rows
// (vectorised) whatever the axis.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/preprocessing/resample.h"
#include "mlseg/preprocessing/resample_grid.h"

namespace mlseg {
namespace {

enum class AxisKernel { nearest, linear, cubic };

// Cubic B-spline prefilter (scipy ni_splines.c, order 3): one pole, gain (1 - z)(1 - 1/z) = 6.
const float kCubicPole = static_cast<float>(std::sqrt(3.0) - 2.0);
constexpr float kCubicGain = 6.0f;
// Coordinates lie in [-0.5, n - 0.5], so the 4 taps reach at most 2 coefficients beyond either end.
constexpr std::int64_t kCubicPad = 2;

// Columns resampled together. Along y and z: up to this many neighbouring columns, which are
// contiguous in memory, so rows are copied and interpolated as whole vectors.
constexpr std::int64_t kMaxStridedWidth = 256;
// Along x (contiguous lines): this many lines, transposed into the buffer so that the prefilter
// recursion runs over vectors of lines instead of one scalar chain per line.
constexpr std::int64_t kLinesPerGroup = 64;
// Work items per pass: enough to balance threads, few enough that buffers are allocated rarely.
constexpr std::int64_t kMaxBatchesPerPass = 256;
// In-plane passes go plane by plane when there are at least this many planes per thread.
constexpr std::int64_t kMinPlanesPerThread = 4;

// For each output index along the axis: which buffer rows it reads and with what weights.
struct AxisTaps {
  int taps_per_output = 1;
  std::int64_t pad = 0;              // buffer row r holds input index clamp(r - pad)
  std::vector<std::int64_t> rows;    // [out_size * taps_per_output]
  std::vector<float> weights;        // [out_size * taps_per_output]
};

AxisTaps make_taps(AxisKernel kernel, std::int64_t in_size, std::int64_t out_size) {
  AxisTaps taps;
  taps.taps_per_output = kernel == AxisKernel::nearest ? 1 : kernel == AxisKernel::linear ? 2 : 4;
  taps.pad = kernel == AxisKernel::cubic ? kCubicPad : 0;
  taps.rows.reserve(out_size * taps.taps_per_output);
  taps.weights.reserve(out_size * taps.taps_per_output);
  for (std::int64_t o = 0; o < out_size; ++o) {
    if (kernel == AxisKernel::nearest) {
      taps.rows.push_back(detail::nearest_source_index(o, in_size, out_size));
      taps.weights.push_back(1.0f);
    } else if (kernel == AxisKernel::linear) {
      const detail::LinearTap tap = detail::linear_tap(o, in_size, out_size);
      taps.rows.insert(taps.rows.end(), {tap.lower, tap.upper});
      taps.weights.insert(taps.weights.end(), {static_cast<float>(1.0 - tap.upper_weight),
                                               static_cast<float>(tap.upper_weight)});
    } else {
      const double coordinate = detail::source_coordinate(o, in_size, out_size);
      const double below = std::floor(coordinate);
      const double t = coordinate - below;
      const double u = 1.0 - t;
      const double weights[4] = {u * u * u / 6.0, (4.0 - 6.0 * t * t + 3.0 * t * t * t) / 6.0,
                                 (1.0 + 3.0 * t + 3.0 * t * t - 3.0 * t * t * t) / 6.0, t * t * t / 6.0};
      const std::int64_t buffer_rows = in_size + 2 * kCubicPad;
      for (int k = 0; k < 4; ++k) {
        const auto row = static_cast<std::int64_t>(below) - 1 + k + kCubicPad;
        taps.rows.push_back(std::clamp<std::int64_t>(row, 0, buffer_rows - 1));
        taps.weights.push_back(static_cast<float>(weights[k]));
      }
    }
  }
  return taps;
}

// In-place cubic B-spline prefilter of `rows` rows of `width` columns (row stride `stride`), each
// column a line that continues forever with its first and last values (rows 0 and rows - 1).
void prefilter_cubic(float* buffer, std::int64_t rows, std::int64_t width, std::int64_t stride,
                     std::vector<float>& last_values) {
  const float z = kCubicPole;
  last_values.assign(buffer + (rows - 1) * stride, buffer + (rows - 1) * stride + width);
  // Causal pass; before row 0 the line is constant, so its state is the fixed point gain*v/(1-z).
  for (std::int64_t j = 0; j < width; ++j) buffer[j] *= kCubicGain / (1.0f - z);
  for (std::int64_t r = 1; r < rows; ++r) {
    float* row = buffer + r * stride;
    const float* previous = row - stride;
    for (std::int64_t j = 0; j < width; ++j) row[j] = kCubicGain * row[j] + z * previous[j];
  }
  // Anticausal pass; its start sums the causal output over the constant tail in closed form.
  float* last = buffer + (rows - 1) * stride;
  for (std::int64_t j = 0; j < width; ++j) {
    const float fixed_point = kCubicGain * last_values[j] / (1.0f - z);
    last[j] = -z * fixed_point / (1.0f - z) - z * (last[j] - fixed_point) / (1.0f - z * z);
  }
  for (std::int64_t r = rows - 2; r >= 0; --r) {
    float* row = buffer + r * stride;
    const float* next = row + stride;
    for (std::int64_t j = 0; j < width; ++j) row[j] = z * (next[j] - row[j]);
  }
}

// destination[j] = sum over output q's taps of weight * buffer row[j], j < width.
void interpolate_row(const AxisTaps& taps, std::int64_t q, const float* buffer, std::int64_t stride,
                     std::int64_t width, float* destination) {
  const std::int64_t* rows = taps.rows.data() + q * taps.taps_per_output;
  const float* w = taps.weights.data() + q * taps.taps_per_output;
  const float* r0 = buffer + rows[0] * stride;
  if (taps.taps_per_output == 1) {
    std::copy(r0, r0 + width, destination);
  } else if (taps.taps_per_output == 2) {
    const float* r1 = buffer + rows[1] * stride;
    for (std::int64_t j = 0; j < width; ++j) destination[j] = w[0] * r0[j] + w[1] * r1[j];
  } else {
    const float *r1 = buffer + rows[1] * stride, *r2 = buffer + rows[2] * stride, *r3 = buffer + rows[3] * stride;
    for (std::int64_t j = 0; j < width; ++j) destination[j] = w[0] * r0[j] + w[1] * r1[j] + w[2] * r2[j] + w[3] * r3[j];
  }
}

// One axis of a contiguous [outer, in_size, inner] block resampled into [outer, out_size, inner],
// its columns split into groups that are resampled together.
struct AxisPass {
  AxisTaps taps;
  AxisKernel kernel = AxisKernel::linear;
  std::int64_t outer = 1, in_size = 1, out_size = 1, inner = 1;
  bool lines = false;                // inner == 1: groups of whole lines, transposed
  std::int64_t chunks_per_outer = 1;  // strided: column chunks per outer index
  std::int64_t stride = 1;            // buffer row length: columns per group at most
  std::int64_t groups = 0;
};

AxisPass make_pass(AxisKernel kernel, std::int64_t outer, std::int64_t in_size, std::int64_t out_size,
                   std::int64_t inner) {
  AxisPass pass;
  pass.taps = make_taps(kernel, in_size, out_size);
  pass.kernel = kernel;
  pass.outer = outer;
  pass.in_size = in_size;
  pass.out_size = out_size;
  pass.inner = inner;
  pass.lines = inner == 1;
  pass.chunks_per_outer = (inner + kMaxStridedWidth - 1) / kMaxStridedWidth;
  pass.stride = pass.lines ? kLinesPerGroup : (inner + pass.chunks_per_outer - 1) / pass.chunks_per_outer;
  pass.groups = pass.lines ? (outer + kLinesPerGroup - 1) / kLinesPerGroup : outer * pass.chunks_per_outer;
  return pass;
}

// A worker's buffers, kept across groups and passes.
struct PassScratch {
  std::vector<float> buffer;          // (in_size + 2 pad) rows x stride
  std::vector<float> transposed_out;  // lines: out_size rows x stride
  std::vector<float> last_values;
};

void run_groups(const AxisPass& pass, const float* in, float* out, std::int64_t first_group, std::int64_t end_group,
                PassScratch& scratch) {
  const AxisTaps& taps = pass.taps;
  const std::int64_t stride = pass.stride, in_size = pass.in_size, out_size = pass.out_size;
  const std::int64_t buffer_rows = in_size + 2 * taps.pad;
  scratch.buffer.resize(buffer_rows * stride);
  if (pass.lines) scratch.transposed_out.resize(out_size * stride);
  float* buffer = scratch.buffer.data();
  for (std::int64_t group = first_group; group < end_group; ++group) {
    if (pass.lines) {
      const std::int64_t first_line = group * kLinesPerGroup;
      const std::int64_t width = std::min(kLinesPerGroup, pass.outer - first_line);
      for (std::int64_t j = 0; j < width; ++j) {
        const float* line = in + (first_line + j) * in_size;
        for (std::int64_t r = 0; r < buffer_rows; ++r) buffer[r * stride + j] = line[detail::clamp_index(r - taps.pad, in_size)];
      }
      if (pass.kernel == AxisKernel::cubic) prefilter_cubic(buffer, buffer_rows, width, stride, scratch.last_values);
      float* transposed = scratch.transposed_out.data();
      for (std::int64_t q = 0; q < out_size; ++q) interpolate_row(taps, q, buffer, stride, width, transposed + q * stride);
      for (std::int64_t j = 0; j < width; ++j) {
        float* line = out + (first_line + j) * out_size;
        for (std::int64_t q = 0; q < out_size; ++q) line[q] = transposed[q * stride + j];
      }
    } else {
      const std::int64_t inner = pass.inner;
      const std::int64_t o = group / pass.chunks_per_outer;
      const std::int64_t first_column = (group % pass.chunks_per_outer) * stride;
      const std::int64_t width = std::min(stride, inner - first_column);
      const float* source = in + o * in_size * inner + first_column;
      for (std::int64_t r = 0; r < buffer_rows; ++r) {
        const float* row = source + detail::clamp_index(r - taps.pad, in_size) * inner;
        std::copy(row, row + width, buffer + r * stride);
      }
      if (pass.kernel == AxisKernel::cubic) prefilter_cubic(buffer, buffer_rows, width, stride, scratch.last_values);
      float* destination = out + o * out_size * inner + first_column;
      for (std::int64_t q = 0; q < out_size; ++q) interpolate_row(taps, q, buffer, stride, width, destination + q * inner);
    }
  }
}

void run_pass(const AxisPass& pass, const float* in, float* out, int threads) {
  const std::int64_t batches = std::min(pass.groups, kMaxBatchesPerPass);
  parallel_for(static_cast<std::size_t>(batches), threads, [&](std::size_t batch) {
    PassScratch scratch;
    const auto b = static_cast<std::int64_t>(batch);
    run_groups(pass, in, out, pass.groups * b / batches, pass.groups * (b + 1) / batches, scratch);
  });
}

// x then y within each [Y, X] plane of `in` ([planes, Y, X] -> [planes, new_y, new_x]), one plane per
// work item: the x-resampled plane stays in cache for the y pass and no volume is allocated between.
void resample_planes(const float* in, float* out, std::int64_t planes, std::int64_t rows, std::int64_t columns,
                     std::int64_t new_rows, std::int64_t new_columns, AxisKernel y_kernel, AxisKernel x_kernel,
                     int threads) {
  const bool x_changes = columns != new_columns, y_changes = rows != new_rows;
  const AxisPass x_pass = make_pass(x_kernel, rows, columns, new_columns, 1);
  const AxisPass y_pass = make_pass(y_kernel, 1, rows, new_rows, new_columns);
  const std::int64_t batches = std::min(planes, kMaxBatchesPerPass);
  parallel_for(static_cast<std::size_t>(batches), threads, [&](std::size_t batch) {
    PassScratch scratch;
    std::vector<float> after_x(x_changes && y_changes ? rows * new_columns : 0);
    const auto b = static_cast<std::int64_t>(batch);
    for (std::int64_t plane = planes * b / batches; plane < planes * (b + 1) / batches; ++plane) {
      const float* source = in + plane * rows * columns;
      float* destination = out + plane * new_rows * new_columns;
      if (x_changes) run_groups(x_pass, source, y_changes ? after_x.data() : destination, 0, x_pass.groups, scratch);
      if (y_changes) run_groups(y_pass, x_changes ? after_x.data() : source, destination, 0, y_pass.groups, scratch);
    }
  });
}

// skimage.transform.resize's clip=True: the result stays within the range of what was resized.
void clip_to_input_range(torch::Tensor& out, const torch::Tensor& in, int separate_axis) {
  const std::int64_t channels = in.size(0);
  if (separate_axis < 0) {
    const auto flat = in.reshape({channels, -1});
    const auto low = std::get<0>(flat.min(1)).view({channels, 1, 1, 1});
    const auto high = std::get<0>(flat.max(1)).view({channels, 1, 1, 1});
    out.clamp_(low, high);
    return;
  }
  const int dim = separate_axis + 1;
  const std::int64_t in_size = in.size(dim), out_size = out.size(dim);
  std::vector<std::int64_t> source(static_cast<std::size_t>(out_size));
  for (std::int64_t o = 0; o < out_size; ++o) {
    source[static_cast<std::size_t>(o)] = in_size == out_size ? o : detail::nearest_source_index(o, in_size, out_size);
  }
  const auto per_slice = in.movedim(dim, 1).reshape({channels, in_size, -1});
  const auto index = torch::tensor(source, torch::kLong);
  std::vector<std::int64_t> shape{channels, 1, 1, 1};
  shape[static_cast<std::size_t>(dim)] = out_size;
  const auto low = std::get<0>(per_slice.min(2)).index_select(1, index).view(shape);
  const auto high = std::get<0>(per_slice.max(2)).index_select(1, index).view(shape);
  out.clamp_(low, high);
}

void require_image_data(const torch::Tensor& data) {
  if (!data.defined() || data.dim() != 4 || data.numel() == 0) {
    throw Error("resample_image: expected a non-empty [C, Z, Y, X] image tensor",
                "pass Image::data (2D images are [C, 1, Y, X])");
  }
}

}  // namespace

torch::Tensor resample_image(const torch::Tensor& data, const std::array<std::int64_t, 3>& new_shape_zyx,
                             int separate_axis, const ResampleOptions& options) {
  require_image_data(data);
  detail::require_resample_target(new_shape_zyx, separate_axis, "resample_image");
  torch::Tensor current = data.to(torch::kCPU, torch::kFloat).contiguous();
  const AxisKernel chosen = options.image_interpolation == ImageInterpolation::cubic ? AxisKernel::cubic
                                                                                     : AxisKernel::linear;
  auto kernel_for = [&](int axis) { return axis == separate_axis ? AxisKernel::nearest : chosen; };
  const std::int64_t channels = current.size(0), slices = current.size(1), rows = current.size(2),
                     columns = current.size(3);
  const std::int64_t new_slices = new_shape_zyx[0], new_rows = new_shape_zyx[1], new_columns = new_shape_zyx[2];
  if (rows != new_rows || columns != new_columns) {
    torch::Tensor in_plane = torch::empty({channels, slices, new_rows, new_columns}, current.options());
    const std::int64_t planes = channels * slices;
    if (planes >= kMinPlanesPerThread * std::max(1, options.threads > 0 ? options.threads : default_thread_count())) {
      resample_planes(current.data_ptr<float>(), in_plane.data_ptr<float>(), planes, rows, columns, new_rows,
                      new_columns, kernel_for(1), kernel_for(2), options.threads);
    } else {  // few planes (2D images): each axis over the whole volume, split across threads
      torch::Tensor after_x =
          columns == new_columns ? current : torch::empty({channels, slices, rows, new_columns}, current.options());
      if (columns != new_columns) {
        run_pass(make_pass(kernel_for(2), planes * rows, columns, new_columns, 1), current.data_ptr<float>(),
                 after_x.data_ptr<float>(), options.threads);
      }
      if (rows != new_rows) {
        run_pass(make_pass(kernel_for(1), planes, rows, new_rows, new_columns), after_x.data_ptr<float>(),
                 in_plane.data_ptr<float>(), options.threads);
      } else {
        in_plane = after_x;
      }
    }
    current = in_plane;
  }
  if (slices != new_slices) {
    torch::Tensor resampled = torch::empty({channels, new_slices, new_rows, new_columns}, current.options());
    run_pass(make_pass(kernel_for(0), channels, slices, new_slices, new_rows * new_columns), current.data_ptr<float>(),
             resampled.data_ptr<float>(), options.threads);
    current = resampled;
  }
  if (chosen == AxisKernel::cubic && !current.is_same(data)) {
    clip_to_input_range(current, data.to(torch::kCPU, torch::kFloat), separate_axis);
  }
  return current.is_same(data) ? current.clone() : current;
}

}  // namespace mlseg
