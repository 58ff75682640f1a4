#include "mlseg/metrics/surface_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "mlseg/metrics/boundary_distances.h"
#include "mlseg/metrics/code_words.h"
#include "mlseg/metrics/empty_policy.h"

namespace mlseg {

namespace {

using Shape = std::array<std::int64_t, 3>;

// Inclusive voxel bounding box; empty while hi < lo.
struct Box {
  std::array<std::int64_t, 3> lo{std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::max()};
  std::array<std::int64_t, 3> hi{-1, -1, -1};
  bool empty() const { return hi[0] < lo[0]; }
  void add(std::int64_t z, std::int64_t y, std::int64_t x_first, std::int64_t x_last) {
    lo[0] = std::min(lo[0], z);
    hi[0] = std::max(hi[0], z);
    lo[1] = std::min(lo[1], y);
    hi[1] = std::max(hi[1], y);
    lo[2] = std::min(lo[2], x_first);
    hi[2] = std::max(hi[2], x_last);
  }
  Shape shape() const { return {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1}; }
};

void require_connectivity(int connectivity) {
  if (connectivity != 6 && connectivity != 26) {
    throw std::invalid_argument("surface connectivity must be 6 or 26, not " + std::to_string(connectivity));
  }
}

MetricValue one_sided_empty(UndefinedReason reason, const SurfaceMetricOptions& options) {
  return options.hd_empty_penalty_mm ? MetricValue::of(*options.hd_empty_penalty_mm) : MetricValue::undefined(reason);
}

// Surface metrics of the pair in `workspace`, a box that holds every foreground voxel of both masks.
SurfaceMetrics metrics_of_box(detail::SurfaceDistanceWorkspace& workspace, const std::array<double, 3>& spacing,
                              double tolerance, const SurfaceMetricOptions& options) {
  return surface_metrics_from_distances(workspace.distances(spacing, options.connectivity, options.threads), tolerance,
                                        options);
}

}  // namespace

double SurfaceMetricOptions::tolerance_for(int channel) const {
  if (channel >= 0 && channel < static_cast<int>(nsd_tolerance_mm_per_channel.size())) {
    return nsd_tolerance_mm_per_channel[channel];
  }
  return nsd_tolerance_mm;
}

std::vector<std::uint8_t> mask_boundary(const std::uint8_t* mask, const Shape& shape, int connectivity) {
  require_connectivity(connectivity);
  const std::int64_t nz = shape[0], ny = shape[1], nx = shape[2];
  std::vector<std::uint8_t> boundary(static_cast<std::size_t>(nz * ny * nx), 0);
  const auto inside = [&](std::int64_t z, std::int64_t y, std::int64_t x) {
    return z >= 0 && z < nz && y >= 0 && y < ny && x >= 0 && x < nx && mask[(z * ny + y) * nx + x] != 0;
  };
  for (std::int64_t z = 0; z < nz; ++z) {
    for (std::int64_t y = 0; y < ny; ++y) {
      for (std::int64_t x = 0; x < nx; ++x) {
        const std::int64_t i = (z * ny + y) * nx + x;
        if (!mask[i]) continue;
        bool edge = false;
        if (connectivity == 6) {
          edge = !inside(z - 1, y, x) || !inside(z + 1, y, x) || !inside(z, y - 1, x) || !inside(z, y + 1, x) ||
                 !inside(z, y, x - 1) || !inside(z, y, x + 1);
        } else {
          for (int dz = -1; dz <= 1 && !edge; ++dz) {
            for (int dy = -1; dy <= 1 && !edge; ++dy) {
              for (int dx = -1; dx <= 1 && !edge; ++dx) {
                if ((dz | dy | dx) != 0 && !inside(z + dz, y + dy, x + dx)) edge = true;
              }
            }
          }
        }
        boundary[i] = edge ? 1 : 0;
      }
    }
  }
  return boundary;
}

SurfaceDistances surface_distances(const std::uint8_t* pred, const std::uint8_t* ref, const Shape& shape,
                                   const std::array<double, 3>& spacing, const SurfaceMetricOptions& options) {
  detail::SurfaceDistanceWorkspace workspace;
  workspace.reset(shape);
  const std::int64_t nx = shape[2];
  for (std::int64_t z = 0; z < shape[0]; ++z) {
    for (std::int64_t y = 0; y < shape[1]; ++y) {
      std::uint8_t* row = workspace.row(z, y);
      const std::int64_t first = (z * shape[1] + y) * nx;
      for (std::int64_t x = 0; x < nx; ++x) {
        row[x] = static_cast<std::uint8_t>((pred[first + x] ? detail::kPredMaskBit : 0) |
                                           (ref[first + x] ? detail::kRefMaskBit : 0));
      }
    }
  }
  return workspace.distances(spacing, options.connectivity, options.threads);
}

double percentile_linear(std::vector<double> values, double q) {
  if (values.empty()) throw std::invalid_argument("percentile_linear: no values");
  const double position = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(position));
  const std::size_t upper = std::min(lower + 1, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(lower), values.end());
  const double low_value = values[lower];
  double high_value = low_value;
  if (upper != lower) high_value = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(upper), values.end());
  return low_value + (high_value - low_value) * (position - static_cast<double>(lower));
}

SurfaceMetrics surface_metrics_from_distances(const SurfaceDistances& distances, double nsd_tolerance_mm,
                                              const SurfaceMetricOptions& options) {
  const auto& a = distances.pred_to_ref_mm;
  const auto& b = distances.ref_to_pred_mm;
  SurfaceMetrics m;
  const EmptyState state = empty_state(static_cast<std::int64_t>(b.size()), static_cast<std::int64_t>(a.size()));
  if (state == EmptyState::both_empty) {
    m.hd = m.hd95 = m.assd = m.nsd = MetricValue::undefined(UndefinedReason::both_empty);
    return m;
  }
  if (state != EmptyState::neither_empty) {
    m.hd = m.hd95 = m.assd = one_sided_empty(*empty_reason(state), options);
    m.nsd = MetricValue::of(0.0);
    return m;
  }
  const double max_a = *std::max_element(a.begin(), a.end());
  const double max_b = *std::max_element(b.begin(), b.end());
  m.hd = MetricValue::of(std::max(max_a, max_b));
  m.hd95 = MetricValue::of(std::max(percentile_linear(a, options.hd_percentile), percentile_linear(b, options.hd_percentile)));
  double sum = 0.0;
  std::int64_t within = 0;
  for (const auto* side : {&a, &b}) {
    for (double d : *side) {
      sum += d;
      within += d <= nsd_tolerance_mm;
    }
  }
  const double total = static_cast<double>(a.size() + b.size());
  m.assd = MetricValue::of(sum / total);
  m.nsd = MetricValue::of(static_cast<double>(within) / total);
  return m;
}

SurfaceMetrics surface_metrics_flags(const std::uint8_t* pp, const std::uint8_t* rp, const Shape& full,
                                     const std::array<double, 3>& spacing_zyx_mm, const SurfaceMetricOptions& options) {
  require_connectivity(options.connectivity);
  Box box;
  for (std::int64_t z = 0; z < full[0]; ++z) {
    for (std::int64_t y = 0; y < full[1]; ++y) {
      for (std::int64_t x = 0; x < full[2]; ++x) {
        const std::int64_t i = (z * full[1] + y) * full[2] + x;
        if (pp[i] | rp[i]) box.add(z, y, x, x);
      }
    }
  }
  detail::SurfaceDistanceWorkspace workspace;
  workspace.reset(box.empty() ? Shape{0, 0, 0} : box.shape());
  for (std::int64_t z = box.lo[0]; z <= box.hi[0]; ++z) {
    for (std::int64_t y = box.lo[1]; y <= box.hi[1]; ++y) {
      std::uint8_t* row = workspace.row(z - box.lo[0], y - box.lo[1]);
      const std::int64_t first = (z * full[1] + y) * full[2] + box.lo[2];
      for (std::int64_t x = 0; x <= box.hi[2] - box.lo[2]; ++x) {
        row[x] = static_cast<std::uint8_t>((pp[first + x] ? detail::kPredMaskBit : 0) |
                                           (rp[first + x] ? detail::kRefMaskBit : 0));
      }
    }
  }
  return metrics_of_box(workspace, spacing_zyx_mm, options.nsd_tolerance_mm, options);
}

std::vector<SurfaceMetrics> surface_metrics_codes(const CodeView& pred, const CodeView& ref,
                                                  const std::array<double, 3>& spacing_zyx_mm,
                                                  const std::vector<int>& channels,
                                                  const SurfaceMetricOptions& options) {
  if (pred.num_channels != ref.num_channels || pred.shape_zyx != ref.shape_zyx || pred.word != ref.word ||
      pred.num_words != ref.num_words) {
    throw std::invalid_argument("surface_metrics_codes: prediction and reference differ in channels or shape");
  }
  require_connectivity(options.connectivity);
  const int num_channels = ref.num_channels;
  for (int c : channels) {
    if (c < 0 || c >= num_channels) throw std::invalid_argument("surface_metrics_codes: channel out of range");
  }
  const CodeWordLayout layout = code_word_layout(num_channels);
  const Shape full = ref.shape_zyx;
  const std::int64_t nz = full[0], ny = full[1], nx = full[2];
  std::vector<Box> boxes(static_cast<std::size_t>(num_channels));
  std::vector<SurfaceMetrics> results;
  detail::with_code_word_type(ref, [&](auto tag) {
    using Word = decltype(tag);
    const Word ignore_bit = static_cast<Word>(Word{1} << (num_channels % layout.bits_per_word));
    const Word* ignore_plane = detail::code_word_plane<Word>(ref, num_channels / layout.bits_per_word);
    // One pass for every channel's box: per row the OR of all codes, then the first and last x of
    // each bit found from both ends.
    for (int w = 0; w < layout.num_words; ++w) {
      const Word* p_words = detail::code_word_plane<Word>(pred, w);
      const Word* r_words = detail::code_word_plane<Word>(ref, w);
      const int first_channel = w * layout.bits_per_word;
      const int channels_here = std::min(layout.bits_per_word, num_channels - first_channel);
      if (channels_here <= 0) continue;
      const Word channel_bits = detail::low_bits_mask<Word>(channels_here);
      const auto bits_at = [&](std::int64_t v) -> Word {
        return (ignore_plane[v] & ignore_bit) ? Word{0} : static_cast<Word>((p_words[v] | r_words[v]) & channel_bits);
      };
      std::vector<std::int64_t> first_x(channels_here), last_x(channels_here);
      for (std::int64_t z = 0; z < nz; ++z) {
        for (std::int64_t y = 0; y < ny; ++y) {
          const std::int64_t row = (z * ny + y) * nx;
          Word row_bits = 0;
          {
            // Branch-free over plain pointers, so that it vectorises.
            const Word* p = p_words + row;
            const Word* r = r_words + row;
            const Word* ignore = ignore_plane + row;
            for (std::int64_t x = 0; x < nx; ++x) {
              row_bits |= (ignore[x] & ignore_bit) ? Word{0} : static_cast<Word>(p[x] | r[x]);
            }
            row_bits = static_cast<Word>(row_bits & channel_bits);
          }
          if (!row_bits) continue;
          Word remaining = row_bits;
          for (std::int64_t x = 0; x < nx && remaining; ++x) {
            std::uint64_t found = static_cast<std::uint64_t>(bits_at(row + x) & remaining);
            remaining = static_cast<Word>(remaining & ~static_cast<Word>(found));
            for (; found; found &= found - 1) first_x[detail::count_trailing_zeros(found)] = x;
          }
          remaining = row_bits;
          for (std::int64_t x = nx - 1; x >= 0 && remaining; --x) {
            std::uint64_t found = static_cast<std::uint64_t>(bits_at(row + x) & remaining);
            remaining = static_cast<Word>(remaining & ~static_cast<Word>(found));
            for (; found; found &= found - 1) last_x[detail::count_trailing_zeros(found)] = x;
          }
          for (std::uint64_t bits = row_bits; bits; bits &= bits - 1) {
            const int b = detail::count_trailing_zeros(bits);
            boxes[first_channel + b].add(z, y, first_x[b], last_x[b]);
          }
        }
      }
    }
    detail::SurfaceDistanceWorkspace workspace;  // its buffers serve every channel
    for (int c : channels) {
      const Box& box = boxes[c];
      workspace.reset(box.empty() ? Shape{0, 0, 0} : box.shape());
      const Word* p_words = detail::code_word_plane<Word>(pred, c / layout.bits_per_word);
      const Word* r_words = detail::code_word_plane<Word>(ref, c / layout.bits_per_word);
      const Word channel_bit = static_cast<Word>(Word{1} << (c % layout.bits_per_word));
      const std::int64_t width = box.hi[2] - box.lo[2] + 1;
      for (std::int64_t z = box.lo[0]; z <= box.hi[0]; ++z) {
        for (std::int64_t y = box.lo[1]; y <= box.hi[1]; ++y) {
          std::uint8_t* row = workspace.row(z - box.lo[0], y - box.lo[1]);
          const std::int64_t first = (z * ny + y) * nx + box.lo[2];
          const Word* p = p_words + first;
          const Word* r = r_words + first;
          const Word* ignore = ignore_plane + first;
          for (std::int64_t x = 0; x < width; ++x) {  // branch-free, so that it vectorises
            const std::uint8_t both = static_cast<std::uint8_t>((p[x] & channel_bit ? detail::kPredMaskBit : 0) |
                                                                (r[x] & channel_bit ? detail::kRefMaskBit : 0));
            row[x] = (ignore[x] & ignore_bit) ? std::uint8_t{0} : both;
          }
        }
      }
      results.push_back(metrics_of_box(workspace, spacing_zyx_mm, options.tolerance_for(c), options));
    }
  });
  return results;
}

}  // namespace mlseg
