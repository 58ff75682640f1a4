#include "mlseg/metrics/boundary_distances.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "mlseg/core/parallel.h"
#include "mlseg/metrics/distance_transform.h"

namespace mlseg::detail {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Runs of this many voxels along Y share one minimum Δx, so a search skips them together.
constexpr std::int64_t kBlock = 8;

// A plane's searches give way to its transform once they have visited this many rows, blocks and
// voxels per plane voxel: one visit costs a fraction of what one voxel of the Y pass does, so only
// planes where the searches find little to skip switch.
constexpr std::int64_t kSearchWorkPerPlaneVoxel = 8;

// The boundary bits of both masks (padded rows: row(z, y)[x] for x in [0, nx)).
struct BoundaryGrid {
  const std::uint8_t* data;
  std::int64_t nz, ny, nx;
  const std::uint8_t* row(std::int64_t z, std::int64_t y) const { return data + ((z + 1) * (ny + 2) + y + 1) * (nx + 2) + 1; }
};

// A boundary voxel whose distance is wanted: its place in its X plane and its rank among its mask's
// boundary voxels in row-major order (the order of SurfaceDistances).
struct Query {
  std::int64_t plane_position;  // z * ny + y
  std::int64_t output;
};

// Boundary voxels of one mask grouped by X plane (plane x: queries[starts[x], starts[x + 1])).
struct QueriesByPlane {
  std::vector<Query> queries;
  std::vector<std::int64_t> starts;
};

// Calls fn(x) for every nonzero byte of row[0, n), skipping eight zero bytes at a time.
template <typename Function>
void for_each_nonzero(const std::uint8_t* row, std::int64_t n, Function&& fn) {
  std::int64_t x = 0;
  for (; x + 8 <= n; x += 8) {
    std::uint64_t word;
    std::memcpy(&word, row + x, sizeof word);
    if (word == 0) continue;
    for (std::int64_t i = x; i < x + 8; ++i) {
      if (row[i]) fn(i);
    }
  }
  for (; x < n; ++x) {
    if (row[x]) fn(x);
  }
}

// The boundary voxels of both masks as queries, in one pass to count and one to place them.
void gather_queries(const BoundaryGrid& grid, QueriesByPlane& pred, QueriesByPlane& ref) {
  const std::int64_t nz = grid.nz, ny = grid.ny, nx = grid.nx;
  pred.starts.assign(static_cast<std::size_t>(nx + 1), 0);
  ref.starts.assign(static_cast<std::size_t>(nx + 1), 0);
  for (std::int64_t z = 0; z < nz; ++z) {
    for (std::int64_t y = 0; y < ny; ++y) {
      const std::uint8_t* b = grid.row(z, y);
      for_each_nonzero(b, nx, [&](std::int64_t x) {
        pred.starts[static_cast<std::size_t>(x + 1)] += (b[x] & kPredMaskBit) != 0;
        ref.starts[static_cast<std::size_t>(x + 1)] += (b[x] & kRefMaskBit) != 0;
      });
    }
  }
  for (QueriesByPlane* side : {&pred, &ref}) {
    for (std::int64_t x = 0; x < nx; ++x) side->starts[x + 1] += side->starts[x];
    side->queries.resize(static_cast<std::size_t>(side->starts.back()));
  }
  std::vector<std::int64_t> pred_slot(pred.starts.begin(), pred.starts.end() - 1);
  std::vector<std::int64_t> ref_slot(ref.starts.begin(), ref.starts.end() - 1);
  std::int64_t pred_rank = 0, ref_rank = 0;
  for (std::int64_t z = 0; z < nz; ++z) {
    for (std::int64_t y = 0; y < ny; ++y) {
      const std::uint8_t* b = grid.row(z, y);
      for_each_nonzero(b, nx, [&](std::int64_t x) {
        if (b[x] & kPredMaskBit) pred.queries[static_cast<std::size_t>(pred_slot[x]++)] = {z * ny + y, pred_rank++};
        if (b[x] & kRefMaskBit) ref.queries[static_cast<std::size_t>(ref_slot[x]++)] = {z * ny + y, ref_rank++};
      });
    }
  }
}

// The X pass as a table: per voxel Δx to the nearest boundary voxel of `to_bit` in its row (nx:
// none), stored [X][Z][Y] so that each X plane is one block, and the minimum of each kBlock run
// along Y ([X][Z][Y / kBlock]). kBlock rows at a time go through `run` ([X][row]), so that the
// transposed writes are runs. False when `to_bit` has no boundary voxel.
template <typename Offset>
bool tabulate_offsets(const BoundaryGrid& grid, std::uint8_t to_bit, std::vector<Offset>& offsets,
                      std::vector<Offset>& block_min) {
  const std::int64_t nz = grid.nz, ny = grid.ny, nx = grid.nx;
  const std::int64_t plane_size = nz * ny, blocks_per_row = (ny + kBlock - 1) / kBlock;
  offsets.resize(static_cast<std::size_t>(nx * plane_size));
  block_min.resize(static_cast<std::size_t>(nx * nz * blocks_per_row));
  const Offset none = static_cast<Offset>(nx);
  std::vector<Offset> run(static_cast<std::size_t>(kBlock * nx));
  std::vector<std::int64_t> targets;  // x of the row's boundary voxels of to_bit
  bool any = false;
  for (std::int64_t z = 0; z < nz; ++z) {
    for (std::int64_t block = 0; block < blocks_per_row; ++block) {
      const std::int64_t y0 = block * kBlock, rows = std::min(kBlock, ny - y0);
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::uint8_t* b = grid.row(z, y0 + r);
        targets.clear();
        for_each_nonzero(b, nx, [&](std::int64_t x) {
          if (b[x] & to_bit) targets.push_back(x);
        });
        Offset* d = run.data() + r;
        if (targets.empty()) {
          for (std::int64_t x = 0; x < nx; ++x) d[x * kBlock] = none;
          continue;
        }
        any = true;
        // Before the first target, between two (the nearer one), after the last.
        for (std::int64_t x = 0; x < targets.front(); ++x) d[x * kBlock] = static_cast<Offset>(targets.front() - x);
        for (std::size_t t = 0; t + 1 < targets.size(); ++t) {
          const std::int64_t from = targets[t], to = targets[t + 1];
          for (std::int64_t x = from; x < to; ++x) d[x * kBlock] = static_cast<Offset>(std::min(x - from, to - x));
        }
        for (std::int64_t x = targets.back(); x < nx; ++x) d[x * kBlock] = static_cast<Offset>(x - targets.back());
      }
      for (std::int64_t x = 0; x < nx; ++x) {
        const Offset* source = run.data() + x * kBlock;
        Offset* target = offsets.data() + x * plane_size + z * ny + y0;
        Offset m = source[0];
        if (rows == kBlock) {  // a fixed count: moves, not a library call
          for (std::int64_t r = 0; r < kBlock; ++r) target[r] = source[r];
          for (std::int64_t r = 1; r < kBlock; ++r) m = std::min(m, source[r]);
        } else {
          for (std::int64_t r = 0; r < rows; ++r) target[r] = source[r];
          for (std::int64_t r = 1; r < rows; ++r) m = std::min(m, source[r]);
        }
        block_min[static_cast<std::size_t>((x * nz + z) * blocks_per_row + block)] = m;
      }
    }
  }
  return any;
}

// (i · step)² as the transform computes it, s² · i · i, for i = 0 .. n − 1.
std::vector<double> squared_steps(double step_mm, std::int64_t n) {
  const double s2 = step_mm * step_mm;
  std::vector<double> table(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const double delta = static_cast<double>(i);
    table[static_cast<std::size_t>(i)] = s2 * delta * delta;
  }
  return table;
}

// The squared distances within one X plane of the Δx table ([Z][Y]): either searched outward from
// each voxel, or read from the plane's Y and Z passes once transform() has run.
//
// The search skips what cannot hold a closer voxel: a row whose smallest Δx is already too far,
// and within a row each run of kBlock voxels likewise. In a plane most rows cross the other
// boundary far away in X or not at all, so a search evaluates few voxels.
template <typename Offset>
class PlaneDistances {
 public:
  PlaneDistances(std::int64_t nz, std::int64_t ny, const double* squared_x, const double* squared_y,
                 const double* squared_z, double step_y_mm)
      : nz_(nz),
        ny_(ny),
        blocks_per_row_((ny + kBlock - 1) / kBlock),
        squared_x_(squared_x),
        squared_y_(squared_y),
        squared_z_(squared_z),
        step_y_mm_(step_y_mm),
        row_min_(static_cast<std::size_t>(nz)) {}

  void start(const Offset* offsets, const Offset* block_min) {
    offsets_ = offsets;
    block_min_ = block_min;
    work_ = 0;
    transformed_ = false;
    for (std::int64_t z = 0; z < nz_; ++z) {
      const Offset* blocks = block_min + z * blocks_per_row_;
      row_min_[static_cast<std::size_t>(z)] = *std::min_element(blocks, blocks + blocks_per_row_);
    }
  }
  /// Rows, blocks and voxels visited by the searches since start().
  std::int64_t work() const { return work_; }
  bool transformed() const { return transformed_; }

  // Outward in Z, then in Y within each row; stops once the distance along the axes searched alone
  // reaches the best value. Each candidate is sz²Δz² + (sy²Δy² + sx²Δx²), the transform's value;
  // rounding is monotonic, so a bound computed from smaller terms the same way is a lower bound.
  double search(std::int64_t z, std::int64_t y) {
    double best = kInfinity;
    for (std::int64_t k = 0; z - k >= 0 || z + k < nz_; ++k) {
      const double tz = squared_z_[static_cast<std::size_t>(k)];
      if (tz >= best) break;
      if (z - k >= 0) search_row(z - k, y, tz, best);
      if (k > 0 && z + k < nz_) search_row(z + k, y, tz, best);
    }
    return best;
  }

  // The plane's Y pass (the transform's own line code, so the same values), for read().
  void transform() {
    transformed_ = true;
    const std::size_t plane = static_cast<std::size_t>(nz_ * ny_);
    if (transformed_rows_.size() < plane) transformed_rows_.resize(plane);
    line_.resize(static_cast<std::size_t>(ny_));
    envelope_.resize(ny_);
    for (std::int64_t z = 0; z < nz_; ++z) {
      const Offset* row = offsets_ + z * ny_;
      for (std::int64_t y = 0; y < ny_; ++y) line_[static_cast<std::size_t>(y)] = squared_x_[row[y]];
      squared_distance_line(line_.data(), transformed_rows_.data() + z * ny_, ny_, step_y_mm_, envelope_);
    }
  }

  // The Z pass at one voxel of a transformed plane, outward until sz²Δz² reaches the best value.
  double read(std::int64_t z, std::int64_t y) const {
    const double* column = transformed_rows_.data() + y;
    double best = column[z * ny_];
    for (std::int64_t k = 1; z - k >= 0 || z + k < nz_; ++k) {
      const double tz = squared_z_[static_cast<std::size_t>(k)];
      if (tz >= best) break;
      if (z - k >= 0) best = std::min(best, tz + column[(z - k) * ny_]);
      if (z + k < nz_) best = std::min(best, tz + column[(z + k) * ny_]);
    }
    return best;
  }

 private:
  void search_row(std::int64_t z, std::int64_t y, double tz, double& best) {
    ++work_;
    if (tz + squared_x_[row_min_[static_cast<std::size_t>(z)]] >= best) return;
    const Offset* row = offsets_ + z * ny_;
    const Offset* blocks = block_min_ + z * blocks_per_row_;
    const std::int64_t home = y / kBlock;
    // Runs outward from y's own; a side ends where even its nearest voxel is too far along Y.
    for (std::int64_t step = 0;; ++step) {
      bool within = false;
      if (home - step >= 0) {
        const std::int64_t b = home - step;
        const std::int64_t gap = step == 0 ? 0 : y - (b * kBlock + kBlock - 1);
        within |= visit_block(row, blocks, b, y, gap, tz, best);
      }
      if (step > 0 && home + step < blocks_per_row_) {
        const std::int64_t b = home + step;
        within |= visit_block(row, blocks, b, y, b * kBlock - y, tz, best);
      }
      if (!within) break;
    }
  }

  // Run b of a row whose nearest voxel is `gap` rows from y; false when the gap alone is too far.
  bool visit_block(const Offset* row, const Offset* blocks, std::int64_t b, std::int64_t y, std::int64_t gap,
                   double tz, double& best) {
    const double ty = squared_y_[static_cast<std::size_t>(gap)];
    if (tz + ty >= best) return false;
    ++work_;
    if (tz + (ty + squared_x_[blocks[b]]) >= best) return true;
    const std::int64_t end = std::min(ny_, (b + 1) * kBlock);
    for (std::int64_t i = b * kBlock; i < end; ++i) {
      const std::int64_t j = i < y ? y - i : i - y;
      best = std::min(best, tz + (squared_y_[static_cast<std::size_t>(j)] + squared_x_[row[i]]));
    }
    work_ += end - b * kBlock;
    return true;
  }

  std::int64_t nz_, ny_, blocks_per_row_;
  const double* squared_x_;  // by Δx; +infinity at the "no boundary voxel in this row" offset
  const double* squared_y_;
  const double* squared_z_;
  double step_y_mm_;
  const Offset* offsets_ = nullptr;
  const Offset* block_min_ = nullptr;
  std::vector<Offset> row_min_;
  std::int64_t work_ = 0;
  bool transformed_ = false;
  std::vector<double> transformed_rows_, line_;
  ParabolaEnvelope envelope_;
};

// Distances from the boundary voxels in `from` to the nearest boundary voxel of `to_bit`.
template <typename Offset>
void directed(const BoundaryGrid& grid, const QueriesByPlane& from, std::uint8_t to_bit,
              const std::array<double, 3>& spacing_zyx_mm, int threads, std::vector<Offset>& offsets,
              std::vector<Offset>& block_min, std::vector<double>& out) {
  out.assign(from.queries.size(), kInfinity);  // +infinity, as the transform gives with no feature voxel
  if (from.queries.empty() || !tabulate_offsets(grid, to_bit, offsets, block_min)) return;
  const std::int64_t nz = grid.nz, ny = grid.ny, nx = grid.nx;
  const std::int64_t plane_size = nz * ny, blocks_per_row = (ny + kBlock - 1) / kBlock;
  std::vector<double> squared_x = squared_steps(spacing_zyx_mm[2], nx + 1);
  squared_x[static_cast<std::size_t>(nx)] = kInfinity;
  const std::vector<double> squared_y = squared_steps(spacing_zyx_mm[1], ny);
  const std::vector<double> squared_z = squared_steps(spacing_zyx_mm[0], nz);
  const std::int64_t budget = kSearchWorkPerPlaneVoxel * plane_size;
  const std::int64_t chunks = threads <= 1 ? 1 : std::min<std::int64_t>(nx, 4 * static_cast<std::int64_t>(threads));
  parallel_for(static_cast<std::size_t>(chunks), threads, [&](std::size_t chunk) {
    PlaneDistances<Offset> plane(nz, ny, squared_x.data(), squared_y.data(), squared_z.data(), spacing_zyx_mm[1]);
    const std::int64_t x_begin = nx * static_cast<std::int64_t>(chunk) / chunks;
    const std::int64_t x_end = nx * static_cast<std::int64_t>(chunk + 1) / chunks;
    for (std::int64_t x = x_begin; x < x_end; ++x) {
      const std::int64_t begin = from.starts[static_cast<std::size_t>(x)], end = from.starts[static_cast<std::size_t>(x + 1)];
      if (begin == end) continue;
      plane.start(offsets.data() + x * plane_size, block_min.data() + x * nz * blocks_per_row);
      for (std::int64_t q = begin; q < end; ++q) {
        const Query& query = from.queries[static_cast<std::size_t>(q)];
        if (!plane.transformed() && plane.work() > budget) plane.transform();
        const std::int64_t z = query.plane_position / ny, y = query.plane_position % ny;
        const double squared = plane.transformed() ? plane.read(z, y) : plane.search(z, y);
        out[static_cast<std::size_t>(query.output)] = std::sqrt(squared);
      }
    }
  });
}

}  // namespace

void SurfaceDistanceWorkspace::reset(const std::array<std::int64_t, 3>& shape_zyx) {
  if (shape_zyx[0] < 0 || shape_zyx[1] < 0 || shape_zyx[2] < 0) {
    throw std::invalid_argument("surface distances: negative shape");
  }
  shape_ = shape_zyx;
  masks_.assign(static_cast<std::size_t>((shape_[0] + 2) * (shape_[1] + 2) * (shape_[2] + 2)), 0);
}

void SurfaceDistanceWorkspace::find_boundaries(int connectivity) {
  const std::int64_t nz = shape_[0], ny = shape_[1], nx = shape_[2];
  const std::int64_t row_stride = nx + 2, slice_stride = (ny + 2) * row_stride;
  boundaries_.assign(masks_.size(), 0);
  const std::uint8_t* m = masks_.data();
  if (connectivity == 6) {
    // A voxel is interior when it and its six face neighbours are inside (both masks at once, bitwise).
    for (std::int64_t z = 1; z <= nz; ++z) {
      for (std::int64_t y = 1; y <= ny; ++y) {
        const std::int64_t i = padded_index(z, y, 1);
        const std::uint8_t* c = m + i;
        std::uint8_t* b = boundaries_.data() + i;
        for (std::int64_t x = 0; x < nx; ++x) {
          const std::uint8_t interior = c[x - 1] & c[x + 1] & c[x - row_stride] & c[x + row_stride] &
                                        c[x - slice_stride] & c[x + slice_stride];
          b[x] = static_cast<std::uint8_t>(c[x] & ~interior);
        }
      }
    }
    return;
  }
  // Interior = erosion by the 3 x 3 x 3 cube, separable: along X into boundaries_, along Y into
  // erosion_, then along Z (the padding is background, so the border slices and rows stay 0).
  erosion_.assign(masks_.size(), 0);
  for (std::int64_t z = 1; z <= nz; ++z) {
    for (std::int64_t y = 1; y <= ny; ++y) {
      const std::int64_t i = padded_index(z, y, 1);
      const std::uint8_t* c = m + i;
      std::uint8_t* e = boundaries_.data() + i;
      for (std::int64_t x = 0; x < nx; ++x) e[x] = c[x - 1] & c[x] & c[x + 1];
    }
  }
  for (std::int64_t z = 1; z <= nz; ++z) {
    for (std::int64_t y = 1; y <= ny; ++y) {
      const std::int64_t i = padded_index(z, y, 1);
      const std::uint8_t* e = boundaries_.data() + i;
      std::uint8_t* out = erosion_.data() + i;
      for (std::int64_t x = 0; x < nx; ++x) out[x] = e[x - row_stride] & e[x] & e[x + row_stride];
    }
  }
  for (std::int64_t z = 1; z <= nz; ++z) {
    for (std::int64_t y = 1; y <= ny; ++y) {
      const std::int64_t i = padded_index(z, y, 1);
      const std::uint8_t* e = erosion_.data() + i;
      const std::uint8_t* c = m + i;
      std::uint8_t* b = boundaries_.data() + i;
      for (std::int64_t x = 0; x < nx; ++x) {
        b[x] = static_cast<std::uint8_t>(c[x] & ~(e[x - slice_stride] & e[x] & e[x + slice_stride]));
      }
    }
  }
}

SurfaceDistances SurfaceDistanceWorkspace::distances(const std::array<double, 3>& spacing_zyx_mm, int connectivity,
                                                     int threads) {
  if (connectivity != 6 && connectivity != 26) {
    throw std::invalid_argument("surface connectivity must be 6 or 26, not " + std::to_string(connectivity));
  }
  if (threads <= 0) threads = default_thread_count();
  SurfaceDistances result;
  if (shape_[0] == 0 || shape_[1] == 0 || shape_[2] == 0) return result;
  find_boundaries(connectivity);
  const BoundaryGrid grid{boundaries_.data(), shape_[0], shape_[1], shape_[2]};
  QueriesByPlane pred, ref;
  gather_queries(grid, pred, ref);
  const auto one_direction = [&](const QueriesByPlane& from, std::uint8_t to_bit, std::vector<double>& out) {
    if (shape_[2] >= std::numeric_limits<std::uint16_t>::max()) {
      directed(grid, from, to_bit, spacing_zyx_mm, threads, offsets32_, block_min32_, out);
    } else {
      directed(grid, from, to_bit, spacing_zyx_mm, threads, offsets16_, block_min16_, out);
    }
  };
  one_direction(pred, kRefMaskBit, result.pred_to_ref_mm);
  one_direction(ref, kPredMaskBit, result.ref_to_pred_mm);
  return result;
}

}  // namespace mlseg::detail
