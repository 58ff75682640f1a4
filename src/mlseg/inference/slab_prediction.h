#pragma once
// Prediction in z slabs, for images whose logits do not fit in memory (a whole-body CT with a
// hundred channels needs ~70 GB as float32 logits): the sliding window hands over finished logit
// rows (sliding_window_logit_rows), which are resampled back, turned into probabilities, coded
// and (--save-probabilities) written a few rows at a time. Only one tile's depth of logits, a few
// rows of probabilities and the case's channel code are ever held. The result equals
// predict_case's whole-volume path (same arithmetic per voxel, see ProbabilityRows).
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "mlseg/inference/predict_case.h"
#include "mlseg/inference/preprocess_image.h"

namespace mlseg {

/// Rows handed on per call by the slab path: about this many bytes of float32 [K, rows, Y, X].
inline constexpr std::int64_t kSlabChunkBytes = std::int64_t{256} << 20;

/// Rows of a [channels, rows, plane_voxels] float32 chunk of about kSlabChunkBytes (at least 1).
std::int64_t slab_rows_per_call(std::int64_t channels, std::int64_t plane_voxels);

/// logits_to_original_probabilities for logits that arrive as rows along the first planned axis
/// (in order, each row once): in-plane resampling per chunk (resample_image), the first axis
/// interpolated from the rows held (linear, or nearest when it is the anisotropic axis, with
/// resample_image's taps and arithmetic), then the encoding's nonlinearity and the crop box put
/// back. The sink sees class probabilities float32 [K, n, F1, F2] for rows [row_begin,
/// row_begin + n) of the original extent in planned axes (uncropped, not transposed back), rows in
/// order, every row exactly once by the end of finish().
class ProbabilityRows {
 public:
  using Sink = std::function<void(std::int64_t row_begin, const torch::Tensor& probabilities)>;
  ProbabilityRows(const CaseProperties& properties, const LabelEncoding& encoding, double anisotropy_threshold, int threads,
                  std::int64_t rows_per_call, Sink sink);
  /// Logit rows [z_begin, z_begin + n) of the preprocessed grid ([K, n, Y, X] float32).
  void push(std::int64_t z_begin, const torch::Tensor& logits);
  /// After the last row: hands over what is left. Throws mlseg::Error when rows are missing.
  void finish();

 private:
  void produce(bool all_received);
  void emit(std::int64_t cropped_row, const torch::Tensor& logits);
  void emit_constant_rows(std::int64_t begin, std::int64_t end);

  const CaseProperties& properties_;
  const LabelEncoding& encoding_;
  int threads_;
  std::int64_t rows_per_call_;
  Sink sink_;
  std::array<std::int64_t, 3> planned_{}, cropped_{}, full_{};
  int separate_axis_ = -1;
  std::int64_t received_ = 0;   // planned rows pushed
  std::int64_t produced_ = 0;   // cropped rows emitted
  std::int64_t emitted_full_ = 0;  // full rows handed to the sink
  torch::Tensor held_;          // in-plane resampled rows [K, h, C1, C2] from held_begin_
  std::int64_t held_begin_ = 0;
};

struct SlabPredictionOptions {
  int threads = 1;  ///< resampling workers
  /// --save-probabilities in npy: this file gets [K, Z, Y, X] float32 (sigmoid: channel
  /// probabilities; softmax: class probabilities; powerset: channel marginals), written chunk by
  /// chunk through a temporary name. Empty: none.
  std::filesystem::path probabilities_npy;
};

/// predict_case's result (the code; probabilities left empty) for an image preprocessed with
/// `plan`, by slabs. Throws as predict_case.
PredictedCase predict_case_in_slabs(const std::vector<SegmentationNetwork>& networks, const ModelDescription& model,
                                    const InferencePlan& plan, const PreprocessedImage& preprocessed, const SlidingWindowOptions& window,
                                    const SlabPredictionOptions& options, const std::string& case_id);

}  // namespace mlseg
