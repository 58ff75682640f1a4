#include "mlseg/inference/sliding_window_rows.h"

#include <torch/torch.h>

#include <algorithm>
#include <memory>

#include "mlseg/core/error.h"
#include "mlseg/inference/sliding_window_tiles.h"
#include "mlseg/nn/device.h"

namespace mlseg {
namespace {

using namespace detail;

// The same pass with only one tile's depth of z rows accumulated: a ring of tz rows (image row r
// at ring row r mod tz). Rows below the next tile's z are final and handed to `sink`; every voxel
// sees the same additions in the same order as in sliding_window_pass, so the rows are equal.
void sliding_window_rows_pass(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                              const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink) {
  torch::NoGradGuard no_grad;
  const torch::Device cpu(torch::kCPU);
  const WindowSetup s = setup_window(forwards.size(), image_czyx, options, cpu);
  const auto& tile = s.tile;
  const std::int64_t ring_rows = tile[0];
  rows_per_call = std::max<std::int64_t>(1, rows_per_call);
  torch::Tensor ring;  // [K, tz, padded y, padded x]
  torch::Tensor ring_weight = torch::zeros({ring_rows, s.padded_shape[1], s.padded_shape[2]}, s.weight.options());
  std::int64_t done = 0;  // padded rows below this were handed over
  // The ring rows of padded rows [begin, end) as at most two contiguous runs (ring row, tile row, count).
  auto runs = [ring_rows](std::int64_t begin, std::int64_t end) {
    std::vector<std::array<std::int64_t, 3>> out;
    for (std::int64_t row = begin; row < end;) {
      const std::int64_t at = row % ring_rows;
      const std::int64_t n = std::min(end - row, ring_rows - at);
      out.push_back({at, row - begin, n});
      row += n;
    }
    return out;
  };
  auto flush_until = [&](std::int64_t end) {
    const std::int64_t image_begin = s.pad_below[0], image_end = s.pad_below[0] + s.shape[0];
    for (const auto& [at, offset, n] : runs(done, end)) {
      for (std::int64_t r = 0; r < n; r += rows_per_call) {
        const std::int64_t count = std::min(rows_per_call, n - r);
        const std::int64_t row = done + offset + r;  // padded row of the first
        const std::int64_t lo = std::max(row, image_begin), hi = std::min(row + count, image_end);
        if (lo < hi && ring.defined()) {
          const torch::Tensor weights = ring_weight.slice(0, at + r + lo - row, at + r + hi - row).mul(s.passes_per_tile);
          torch::Tensor rows = ring.slice(1, at + r + lo - row, at + r + hi - row).div(weights);
          if (s.needs_padding) {
            rows = rows.slice(2, s.pad_below[1], s.pad_below[1] + s.shape[1])
                       .slice(3, s.pad_below[2], s.pad_below[2] + s.shape[2])
                       .contiguous();
          }
          require_finite(rows);
          sink(lo - image_begin, rows);
        }
      }
      if (ring.defined()) ring.slice(1, at, at + n).zero_();
      ring_weight.slice(0, at, at + n).zero_();
    }
    done = std::max(done, end);
  };
  for_each_tile_batch(forwards, s, options, cpu, [&](std::size_t first, const torch::Tensor& summed) {
    if (!ring.defined()) ring = torch::zeros({summed.size(1), ring_rows, s.padded_shape[1], s.padded_shape[2]}, s.weight.options());
    for (std::int64_t b = 0; b < summed.size(0); ++b) {
      const auto& p = s.positions[first + static_cast<std::size_t>(b)];
      if (p[0] > done) flush_until(p[0]);  // positions go up in z: no later tile reaches below p[0]
      for (const auto& [at, offset, n] : runs(p[0], p[0] + tile[0])) {
        ring.slice(1, at, at + n)
            .slice(2, p[1], p[1] + tile[1])
            .slice(3, p[2], p[2] + tile[2])
            .addcmul_(summed[b].slice(1, offset, offset + n), s.weight.slice(0, offset, offset + n));
        ring_weight.slice(0, at, at + n)
            .slice(1, p[1], p[1] + tile[1])
            .slice(2, p[2], p[2] + tile[2])
            .add_(s.weight.slice(0, offset, offset + n));
      }
    }
  });
  flush_until(s.padded_shape[0]);
}

}  // namespace

void sliding_window_logit_rows(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                               const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink) {
  check_window_inputs(forwards, image_czyx);
  try {
    sliding_window_rows_pass(forwards, image_czyx, options, rows_per_call, sink);
  } catch (const c10::Error& e) {
    if (options.device().is_cpu() || !is_out_of_memory(e)) throw;
    throw Error(options.device().str() + " ran out of memory predicting tiles of " + shape_text(tile_of(options)) + " (" +
                    std::to_string(std::max(1, options.tile_batch())) + " per forward pass)",
                "lower --tile-batch, free the GPU of other processes (nvidia-smi), or predict with --device cpu");
  }
}

void sliding_window_logit_rows(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                               const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink) {
  std::vector<std::unique_ptr<InferenceModeGuard>> guards;
  sliding_window_logit_rows(network_forwards(networks, image_czyx, options, guards), image_czyx, options, rows_per_call, sink);
}

}  // namespace mlseg
