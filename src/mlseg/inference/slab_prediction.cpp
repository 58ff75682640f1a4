#include "mlseg/inference/slab_prediction.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/inference/sliding_window_rows.h"
#include "mlseg/io/npy.h"
#include "mlseg/preprocessing/crop.h"
#include "mlseg/preprocessing/resample_grid.h"

namespace mlseg {
namespace {

std::int64_t volume_of(const std::array<std::int64_t, 3>& shape) { return shape[0] * shape[1] * shape[2]; }

/// A [K, Z, Y, X] float32 .npy written piece by piece (any axis-aligned block) through a
/// temporary name; commit() renames it into place.
class NpyBlockWriter {
 public:
  NpyBlockWriter(const std::filesystem::path& path, std::array<std::int64_t, 4> shape) : output_(path), shape_(shape) {
    std::string dict = "{'descr': '" + npy_descr(torch::kFloat) + "', 'fortran_order': False, 'shape': (" +
                       std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " + std::to_string(shape[2]) + ", " +
                       std::to_string(shape[3]) + "), }";
    // Format 1.0: magic, version, uint16 header length; data aligned to 64 bytes.
    const std::size_t unpadded = 10 + dict.size() + 1;
    dict.append((64 - unpadded % 64) % 64, ' ');
    dict.push_back('\n');
    header_bytes_ = static_cast<std::int64_t>(10 + dict.size());
    file_.open(output_.temp_path(), std::ios::binary | std::ios::trunc);
    const auto length = static_cast<std::uint16_t>(dict.size());
    const char prefix[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
    file_.write(prefix, sizeof(prefix));
    file_.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    check();
  }

  /// `block` float32 [K, dz, dy, dx] at spatial offset `begin`.
  void write(const torch::Tensor& block, const std::array<std::int64_t, 3>& begin) {
    const torch::Tensor data = block.to(torch::kFloat).contiguous();
    const std::int64_t dz = data.size(1), dy = data.size(2), dx = data.size(3);
    const float* source = data.data_ptr<float>();
    // Runs along x (whole planes when the block spans y and x).
    const bool planes = dy == shape_[2] && dx == shape_[3];
    for (std::int64_t k = 0; k < shape_[0]; ++k) {
      for (std::int64_t z = 0; z < dz; ++z) {
        for (std::int64_t y = 0; y < (planes ? 1 : dy); ++y) {
          const std::int64_t count = planes ? dz * dy * dx : dx;
          const std::int64_t element = ((k * shape_[1] + begin[0] + z) * shape_[2] + begin[1] + y) * shape_[3] + begin[2];
          file_.seekp(header_bytes_ + element * static_cast<std::int64_t>(sizeof(float)));
          file_.write(reinterpret_cast<const char*>(source + ((k * dz + z) * dy + y) * dx), count * static_cast<std::int64_t>(sizeof(float)));
        }
        if (planes) break;
      }
    }
    check();
  }

  void commit() {
    // The last element written makes the file its full size even if a block was skipped.
    file_.close();
    std::filesystem::resize_file(output_.temp_path(),
                                 static_cast<std::uintmax_t>(header_bytes_ + shape_[0] * shape_[1] * shape_[2] * shape_[3] * 4));
    output_.commit();
  }

 private:
  void check() {
    if (!file_) {
      throw Error("cannot write " + output_.target().string(), "check the free disk space and the output folder's permissions",
                  {output_.target().string(), "", ""});
    }
  }
  AtomicOutput output_;
  std::array<std::int64_t, 4> shape_;
  std::int64_t header_bytes_ = 0;
  std::ofstream file_;
};

}  // namespace

std::int64_t slab_rows_per_call(std::int64_t channels, std::int64_t plane_voxels) {
  const std::int64_t row_bytes = std::max<std::int64_t>(1, channels * plane_voxels * static_cast<std::int64_t>(sizeof(float)));
  return std::max<std::int64_t>(1, kSlabChunkBytes / row_bytes);
}

ProbabilityRows::ProbabilityRows(const CaseProperties& p, const LabelEncoding& encoding, double anisotropy_threshold, int threads,
                                 std::int64_t rows_per_call, Sink sink)
    : properties_(p), encoding_(encoding), threads_(threads), rows_per_call_(std::max<std::int64_t>(1, rows_per_call)), sink_(std::move(sink)) {
  planned_ = p.shape_after_resample;
  cropped_ = p.shape_after_crop;
  for (int i = 0; i < 3; ++i) full_[i] = p.original_shape_zyx[p.transpose_forward[i]];
  if (planned_ != cropped_) separate_axis_ = separate_axis_for(p.spacing_mm, p.spacing_after_crop_mm, anisotropy_threshold);
}

void ProbabilityRows::push(std::int64_t z_begin, const torch::Tensor& logits) {
  if (z_begin != received_ || logits.dim() != 4 || logits.size(2) != planned_[1] || logits.size(3) != planned_[2] ||
      z_begin + logits.size(1) > planned_[0]) {
    throw Error("logit rows out of order or of another shape than the preprocessed image's " + format_shape(planned_),
                "pass the rows of this case's preprocessed image in order", {"", properties_.case_id, ""});
  }
  received_ += logits.size(1);
  torch::Tensor rows = logits.to(torch::kFloat);
  if (planned_[1] != cropped_[1] || planned_[2] != cropped_[2]) {
    // resample_image's in-plane passes, plane by plane as for the whole volume (z keeps its size).
    ResampleOptions options;
    options.image_interpolation = ImageInterpolation::linear;
    options.threads = threads_;
    rows = resample_image(rows, {rows.size(1), cropped_[1], cropped_[2]}, separate_axis_ == 0 ? -1 : separate_axis_, options);
  }
  if (planned_[0] == cropped_[0]) {
    for (std::int64_t r = 0; r < rows.size(1); r += rows_per_call_) {
      emit(z_begin + r, rows.slice(1, r, std::min(rows.size(1), r + rows_per_call_)));
    }
    produced_ = received_;
    return;
  }
  held_ = held_.defined() ? torch::cat({held_, rows}, 1) : rows.contiguous();
  produce(false);
}

void ProbabilityRows::produce(bool all_received) {
  const std::int64_t in = planned_[0], out = cropped_[0];
  const bool nearest = separate_axis_ == 0;
  auto lowest_tap = [&](std::int64_t o) {
    return nearest ? detail::nearest_source_index(o, in, out) : detail::linear_tap(o, in, out).lower;
  };
  auto highest_tap = [&](std::int64_t o) {
    return nearest ? detail::nearest_source_index(o, in, out) : detail::linear_tap(o, in, out).upper;
  };
  while (produced_ < out) {
    std::int64_t count = 0;
    while (count < rows_per_call_ && produced_ + count < out && (all_received || highest_tap(produced_ + count) < received_)) ++count;
    if (count == 0) break;
    const std::int64_t channels = held_.size(0), plane = held_.size(2) * held_.size(3), held_rows = held_.size(1);
    torch::Tensor rows = torch::empty({channels, count, held_.size(2), held_.size(3)}, held_.options());
    const float* source = held_.data_ptr<float>();
    float* destination = rows.data_ptr<float>();
    const std::int64_t first = produced_;
    at::parallel_for(0, channels * count, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t item = begin; item < end; ++item) {
        const std::int64_t k = item / count, o = first + item % count;
        float* d = destination + item * plane;
        const float* channel = source + k * held_rows * plane;
        if (nearest) {
          const float* r0 = channel + (detail::nearest_source_index(o, in, out) - held_begin_) * plane;
          std::copy(r0, r0 + plane, d);
        } else {
          // resample_image's linear taps (interpolate_row): float weights, the same expression.
          const detail::LinearTap tap = detail::linear_tap(o, in, out);
          const float w0 = static_cast<float>(1.0 - tap.upper_weight), w1 = static_cast<float>(tap.upper_weight);
          const float* r0 = channel + (tap.lower - held_begin_) * plane;
          const float* r1 = channel + (tap.upper - held_begin_) * plane;
          for (std::int64_t j = 0; j < plane; ++j) d[j] = w0 * r0[j] + w1 * r1[j];
        }
      }
    });
    produced_ += count;
    emit(first, rows);
    // Rows no later output reads are dropped.
    const std::int64_t keep_from = produced_ < out ? lowest_tap(produced_) : in;
    if (keep_from > held_begin_) {
      held_ = held_.slice(1, std::min(keep_from - held_begin_, held_rows)).contiguous();
      held_begin_ = keep_from;
    }
  }
}

void ProbabilityRows::emit_constant_rows(std::int64_t begin, std::int64_t end) {
  const std::int64_t outputs = encoding_.num_outputs();
  for (std::int64_t row = begin; row < end; row += rows_per_call_) {
    const std::int64_t n = std::min(rows_per_call_, end - row);
    torch::Tensor rows = torch::zeros({outputs, n, full_[1], full_[2]}, torch::kFloat);
    if (encoding_.outside_value(0) != 0.0) rows[0].fill_(encoding_.outside_value(0));
    sink_(row, rows);
  }
  emitted_full_ = std::max(emitted_full_, end);
}

void ProbabilityRows::emit(std::int64_t cropped_row, const torch::Tensor& logits) {
  const auto& begin = properties_.crop_begin;
  if (emitted_full_ < begin[0]) emit_constant_rows(emitted_full_, begin[0]);
  torch::Tensor probabilities = encoding_.probabilities(logits, 0);
  if (cropped_[1] != full_[1] || cropped_[2] != full_[2]) {
    torch::Tensor rows = torch::zeros({probabilities.size(0), probabilities.size(1), full_[1], full_[2]}, torch::kFloat);
    if (encoding_.outside_value(0) != 0.0) rows[0].fill_(encoding_.outside_value(0));
    rows.slice(2, begin[1], begin[1] + cropped_[1]).slice(3, begin[2], begin[2] + cropped_[2]).copy_(probabilities);
    probabilities = rows;
  }
  sink_(begin[0] + cropped_row, probabilities.contiguous());
  emitted_full_ = begin[0] + cropped_row + logits.size(1);
}

void ProbabilityRows::finish() {
  if (received_ != planned_[0]) {
    throw Error("the sliding window handed over " + std::to_string(received_) + " of " + std::to_string(planned_[0]) + " logit rows",
                "this is a bug in the slab path; predict with a larger --memory-budget-gb meanwhile", {"", properties_.case_id, ""});
  }
  if (planned_[0] != cropped_[0]) produce(true);
  emit_constant_rows(emitted_full_, full_[0]);
}

PredictedCase predict_case_in_slabs(const std::vector<SegmentationNetwork>& networks, const ModelDescription& model,
                                    const InferencePlan& plan, const PreprocessedImage& preprocessed, const SlidingWindowOptions& window,
                                    const SlabPredictionOptions& options, const std::string& case_id) {
  const CaseProperties& p = preprocessed.properties;
  const LabelEncoding& encoding = model.encoding;
  PredictedCase result;
  result.case_id = case_id;
  result.encoding = encoding;
  result.channel_names = model.channel_names;
  result.geometry = p.original_geometry;
  result.code = empty_code_volume(p.original_shape_zyx, encoding.num_channels());
  // The planned first axis is this axis of the original image.
  const int original_axis = p.transpose_forward[0];
  std::optional<NpyBlockWriter> probabilities;
  if (!options.probabilities_npy.empty()) {
    const std::int64_t saved = encoding.kind() == EncodingKind::powerset ? encoding.num_channels() : encoding.num_outputs();
    probabilities.emplace(options.probabilities_npy,
                          std::array<std::int64_t, 4>{saved, p.original_shape_zyx[0], p.original_shape_zyx[1], p.original_shape_zyx[2]});
  }
  auto take = [&](std::int64_t row_begin, const torch::Tensor& class_probabilities) {
    const CodeVolume code = encoding.code_from_outputs(class_probabilities, /*are_logits=*/false);
    result.code.words.narrow(1 + original_axis, row_begin, code.words.size(1)).copy_(permute_spatial(code.words, p.transpose_backward));
    if (probabilities) {
      const torch::Tensor kept = encoding.kind() == EncodingKind::powerset ? encoding.channel_probabilities(class_probabilities, 0)
                                                                           : class_probabilities;
      std::array<std::int64_t, 3> begin{0, 0, 0};
      begin[original_axis] = row_begin;
      probabilities->write(permute_spatial(kept, p.transpose_backward), begin);
    }
  };
  const std::int64_t outputs = encoding.num_outputs();
  const std::int64_t plane = std::max(p.shape_after_resample[1] * p.shape_after_resample[2], volume_of(p.original_shape_zyx) /
                                                                                                    std::max<std::int64_t>(1, p.original_shape_zyx[original_axis]));
  const std::int64_t rows_per_call = slab_rows_per_call(outputs, plane);
  ProbabilityRows rows(p, encoding, plan.anisotropy_threshold, options.threads, rows_per_call, take);
  sliding_window_logit_rows(networks, preprocessed.image, window, rows_per_call,
                            [&rows](std::int64_t z_begin, const torch::Tensor& logits) { rows.push(z_begin, logits); });
  rows.finish();
  if (probabilities) probabilities->commit();
  return result;
}

}  // namespace mlseg
