#include "mlseg/nn/winograd_conv.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mlseg/core/cpu_dispatch.h"
#include "mlseg/core/error.h"

// The vector helpers pass AVX vectors by value; they are always inlined into the per-ISA block
// runners, so no call crosses an ABI boundary.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace mlseg {
namespace {

constexpr int kTileSide = 6;                  // input tile of F(4x4, 3x3): 6 x 6
constexpr int kOutSide = 4;                   // output tile: 4 x 4
constexpr int kPoints = kTileSide * kTileSide;  // Winograd points per tile
constexpr int kTaps = 3;                      // kernel side
constexpr std::int64_t kPanel = 32;           // output channels per kernel panel (the product kernel's width)
constexpr std::int64_t kChannelAlign = 16;    // input channels padded to the widest vector
/// Winograd-domain input and products of one block stay below this (the core's L2 is 1 MiB on the
/// EPYC measured; 512 KiB on older cores still holds most of it).
constexpr std::int64_t kBlockBytes = 768 * 1024;
/// Slices along z per block at most (each block also transforms the two slices around it).
constexpr std::int64_t kMaxBlockSlices = 8;
/// Transformed weights above this size (128 x 128 channels and up) are read once per run of whole
/// planes rather than once per cache-sized block.
constexpr std::int64_t kWholePlanesWeightBytes = 2 * 1024 * 1024;
/// Winograd-domain input and products of a run of whole planes stay below this (the L3 cache).
constexpr std::int64_t kWholePlanesBytes = 16 * 1024 * 1024;

constexpr const char* kFix = "use the direct convolution (set MLSEG_WINOGRAD=0) and report this as a bug";

std::int64_t round_up(std::int64_t value, std::int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

bool initially_enabled() {
  const char* value = std::getenv("MLSEG_WINOGRAD");
  return value == nullptr || std::string(value) != "0";
}

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> flag{initially_enabled()};
  return flag;
}

// One convolution's shapes and pointers, and how it is cut into blocks.
struct Job {
  const float* x = nullptr;
  float* out = nullptr;
  const float* bias = nullptr;  // padded_out floats
  const float* panels = nullptr;
  std::int64_t batch = 0, in_channels = 0, out_channels = 0, depth = 0, height = 0, width = 0;
  std::int64_t tiles_y = 0, tiles_x = 0;
  std::int64_t padded_in = 0, padded_out = 0, depth_k = 0, panel_count = 0;
  std::int64_t block_tiles = 0, block_slices = 0;  // tiles along x, slices along z per block
  std::int64_t blocks_x = 0, blocks_z = 0;
  bool whole_planes = false;  // blocks of every tile of a sample's slices, each phase parallel
  std::int64_t block_count() const { return batch * tiles_y * blocks_x * blocks_z; }
};

// Tiles side by side in one tile row of a block (the width of the channels-last input patch).
std::int64_t patch_tiles(const Job& job) { return std::min(job.block_tiles, job.tiles_x); }

template <int VW>
struct VecOf {
  typedef float type __attribute__((vector_size(VW * sizeof(float))));
};

template <typename V>
MLSEG_ALWAYS_INLINE V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <typename V>
MLSEG_ALWAYS_INLINE void store(float* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// B^T d of F(4, 3) (interpolation points 0, 1, -1, 2, -2, infinity).
template <typename V>
MLSEG_ALWAYS_INLINE void input_transform_1d(const V (&d)[kTileSide], V (&t)[kTileSide]) {
  t[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  t[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
  t[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
  t[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
  t[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
  t[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// A^T m of F(4, 3).
template <typename V>
MLSEG_ALWAYS_INLINE void output_transform_1d(const V (&m)[kTileSide], V (&y)[kOutSide]) {
  const V sum12 = m[1] + m[2], diff12 = m[1] - m[2], sum34 = m[3] + m[4], diff34 = m[3] - m[4];
  y[0] = m[0] + sum12 + sum34;
  y[1] = diff12 + 2.0f * diff34;
  y[2] = sum12 + 4.0f * sum34;
  y[3] = diff12 + 8.0f * diff34 + m[5];
}

// Fills V (the block's Winograd-domain input, [36][block_tiles][block_slices + 2][padded_in]) at
// block tiles [first_tile, first_tile + tiles) from tile row ty, tiles tx0 ..., slices z0 - 1 ...
// z0 + slices.
template <int VW>
MLSEG_ALWAYS_INLINE void transform_input(const Job& job, std::int64_t sample, std::int64_t ty, std::int64_t tx0,
                                         std::int64_t tiles, std::int64_t z0, std::int64_t slices, float* patch, float* v,
                                         std::int64_t first_tile) {
  using V = typename VecOf<VW>::type;
  const std::int64_t patch_width = patch_tiles(job) * kOutSide + 2, cin = job.padded_in;
  const std::int64_t row_stride = job.block_slices + 2, point_stride = job.block_tiles * row_stride * cin;
  const std::int64_t plane = job.height * job.width;
  const std::int64_t x_begin = tx0 * kOutSide - 1, y_begin = ty * kOutSide - 1;
  const std::int64_t patch_columns = tiles * kOutSide + 2;
  v += first_tile * row_stride * cin;
  for (std::int64_t zl = 0; zl < slices + 2; ++zl) {
    const std::int64_t z = z0 - 1 + zl;
    if (z < 0 || z >= job.depth) {
      for (int p = 0; p < kPoints; ++p) {
        for (std::int64_t t = 0; t < tiles; ++t) std::memset(v + p * point_stride + (t * row_stride + zl) * cin, 0, cin * sizeof(float));
      }
      continue;
    }
    // The 6 input rows under this tile row, channels last (zero outside the volume).
    const std::int64_t column_lo = std::max<std::int64_t>(0, -x_begin);
    const std::int64_t column_hi = std::min<std::int64_t>(patch_columns, job.width - x_begin);
    for (std::int64_t c = 0; c < job.in_channels; ++c) {
      const float* slice = job.x + ((sample * job.in_channels + c) * job.depth + z) * plane;
      for (int r = 0; r < kTileSide; ++r) {
        float* row = patch + r * patch_width * cin + c;
        const std::int64_t y = y_begin + r;
        if (y < 0 || y >= job.height) {
          for (std::int64_t i = 0; i < patch_columns; ++i) row[i * cin] = 0.0f;
          continue;
        }
        const float* source = slice + y * job.width + x_begin;
        for (std::int64_t i = 0; i < column_lo; ++i) row[i * cin] = 0.0f;
        for (std::int64_t i = column_lo; i < column_hi; ++i) row[i * cin] = source[i];
        for (std::int64_t i = std::max(column_lo, column_hi); i < patch_columns; ++i) row[i * cin] = 0.0f;
      }
    }
    for (std::int64_t t = 0; t < tiles; ++t) {
      float* out = v + (t * row_stride + zl) * cin;
      for (std::int64_t c = 0; c < cin; c += VW) {
        V d[kTileSide][kTileSide], columns[kTileSide][kTileSide];
        for (int i = 0; i < kTileSide; ++i) {
          for (int j = 0; j < kTileSide; ++j) d[j][i] = load<V>(patch + (i * patch_width + t * kOutSide + j) * cin + c);
        }
        // d[j][i]: column j of the tile; transform along y per column, then along x per row.
        for (int j = 0; j < kTileSide; ++j) input_transform_1d(d[j], columns[j]);
        for (int i = 0; i < kTileSide; ++i) {
          V row[kTileSide], transformed[kTileSide];
          for (int j = 0; j < kTileSide; ++j) row[j] = columns[j][i];
          input_transform_1d(row, transformed);
          for (int j = 0; j < kTileSide; ++j) store(out + (i * kTileSide + j) * point_stride + c, transformed[j]);
        }
      }
    }
  }
}

// C[MR rows][NV * VW columns] = A [MR rows][K] x panel [K][columns of a 32-wide panel]; A's rows
// start lda floats apart (consecutive slices of one tile: their K = 3 * Cin windows overlap).
template <int VW, int MR, int NV>
MLSEG_ALWAYS_INLINE void product_kernel(const float* a, std::int64_t lda, const float* panel, std::int64_t depth_k, float* c,
                                        std::int64_t ldc) {
  using V = typename VecOf<VW>::type;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  }
  for (std::int64_t k = 0; k < depth_k; ++k) {
    V b[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) b[j] = load<V>(panel + k * kPanel + j * VW);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = a[i * lda + k] - V{};  // a broadcast (x - 0 is x exactly, so it folds away)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * b[j];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) store(c + i * ldc + j * VW, acc[i][j]);
  }
}

// M[p][tile][slice][padded_out] = sum over k of V rows (tile, slice .. slice + 2) x panels, for
// Winograd points [first_point, end_point). Slices are computed in groups of MR, so M holds
// m_slices = round_up(block_slices, MR) rows per tile and V has MR rows of slack at its end.
template <int VW, int MR, int NV>
MLSEG_ALWAYS_INLINE void multiply(const Job& job, std::int64_t tiles, std::int64_t slices, const float* v, float* m,
                                  std::int64_t m_slices, std::int64_t first_point, std::int64_t end_point) {
  const std::int64_t cin = job.padded_in, cout = job.padded_out, row_stride = job.block_slices + 2;
  const std::int64_t point_stride = job.block_tiles * row_stride * cin;
  constexpr std::int64_t kColumns = NV * VW;
  for (std::int64_t p = first_point; p < end_point; ++p) {
    const float* vp = v + p * point_stride;
    const float* up = job.panels + p * job.panel_count * job.depth_k * kPanel;
    float* mp = m + p * job.block_tiles * m_slices * cout;
    for (std::int64_t t = 0; t < tiles; ++t) {
      for (std::int64_t z = 0; z < slices; z += MR) {
        const float* a = vp + (t * row_stride + z) * cin;
        float* c = mp + (t * m_slices + z) * cout;
        for (std::int64_t panel = 0; panel < job.panel_count; ++panel) {
          for (std::int64_t column = 0; column < kPanel; column += kColumns) {
            product_kernel<VW, MR, NV>(a, cin, up + panel * job.depth_k * kPanel + column, job.depth_k, c + panel * kPanel + column,
                                       cout);
          }
        }
      }
    }
  }
}

// Output tiles of the block from M, plus the bias, written into out [B, Cout, D, H, W].
template <int VW>
MLSEG_ALWAYS_INLINE void transform_output(const Job& job, std::int64_t sample, std::int64_t ty, std::int64_t tx0,
                                          std::int64_t tiles, std::int64_t z0, std::int64_t slices, const float* m,
                                          std::int64_t m_slices, float* rows_out, std::int64_t first_tile) {
  using V = typename VecOf<VW>::type;
  const std::int64_t cout = job.padded_out, point_stride = job.block_tiles * m_slices * cout;
  const std::int64_t out_width = patch_tiles(job) * kOutSide;
  const std::int64_t plane = job.height * job.width;
  const std::int64_t y0 = ty * kOutSide, x0 = tx0 * kOutSide;
  const std::int64_t valid_rows = std::min<std::int64_t>(kOutSide, job.height - y0);
  const std::int64_t valid_columns = std::min<std::int64_t>(tiles * kOutSide, job.width - x0);
  for (std::int64_t zl = 0; zl < slices; ++zl) {
    for (std::int64_t t = 0; t < tiles; ++t) {
      const float* mrow = m + ((first_tile + t) * m_slices + zl) * cout;
      for (std::int64_t c = 0; c < cout; c += VW) {
        V rows[kOutSide][kTileSide];  // A^T applied along y: rows[a][j]
        for (int j = 0; j < kTileSide; ++j) {
          V column[kTileSide], reduced[kOutSide];
          for (int i = 0; i < kTileSide; ++i) column[i] = load<V>(mrow + (i * kTileSide + j) * point_stride + c);
          output_transform_1d(column, reduced);
          for (int a = 0; a < kOutSide; ++a) rows[a][j] = reduced[a];
        }
        const V bias = load<V>(job.bias + c);
        for (int a = 0; a < kOutSide; ++a) {
          V y[kOutSide];
          output_transform_1d(rows[a], y);
          for (int b = 0; b < kOutSide; ++b) store(rows_out + (a * out_width + t * kOutSide + b) * cout + c, y[b] + bias);
        }
      }
    }
    const std::int64_t z = z0 + zl;
    for (std::int64_t c = 0; c < job.out_channels; ++c) {
      float* slice = job.out + ((sample * job.out_channels + c) * job.depth + z) * plane;
      for (std::int64_t a = 0; a < valid_rows; ++a) {
        float* target = slice + (y0 + a) * job.width + x0;
        const float* source = rows_out + a * out_width * cout + c;
        for (std::int64_t i = 0; i < valid_columns; ++i) target[i] = source[i * cout];
      }
    }
  }
}

struct Scratch {
  std::vector<float> patch, v, m, rows_out;
};

// Per tile, the products' slices (rounded up to the kernel's rows) and the floats of V and M.
std::int64_t product_slices(const Job& job, int mr) { return round_up(job.block_slices, mr); }
std::size_t v_floats(const Job& job, int mr) {
  return static_cast<std::size_t>((kPoints * job.block_tiles * (job.block_slices + 2) + mr) * job.padded_in);
}
std::size_t m_floats(const Job& job, int mr) {
  return static_cast<std::size_t>(kPoints * job.block_tiles * product_slices(job, mr) * job.padded_out);
}

// This thread's buffers, kept from call to call (capacity only grows): fresh ones would cost page
// faults on every convolution. The patch is cleared: its padded channels must be zero.
template <int MR>
Scratch& thread_scratch(const Job& job, bool allocate_blocks) {
  thread_local Scratch s;
  s.patch.assign(static_cast<std::size_t>(kTileSide * (patch_tiles(job) * kOutSide + 2) * job.padded_in), 0.0f);
  s.rows_out.resize(static_cast<std::size_t>(kOutSide * patch_tiles(job) * kOutSide * job.padded_out));
  if (allocate_blocks) {
    s.v.resize(v_floats(job, MR));
    s.m.resize(m_floats(job, MR));
  }
  return s;
}

// Blocks [begin, end) of the job, each on one thread with this thread's scratch.
template <int VW, int MR, int NV>
MLSEG_ALWAYS_INLINE void run_blocks(const Job& job, std::int64_t begin, std::int64_t end) {
  const std::int64_t m_slices = product_slices(job, MR);
  Scratch& s = thread_scratch<MR>(job, true);
  for (std::int64_t block = begin; block < end; ++block) {
    std::int64_t rest = block;
    const std::int64_t bx = rest % job.blocks_x;
    rest /= job.blocks_x;
    const std::int64_t bz = rest % job.blocks_z;
    rest /= job.blocks_z;
    const std::int64_t ty = rest % job.tiles_y, sample = rest / job.tiles_y;
    const std::int64_t tx0 = bx * job.block_tiles, z0 = bz * job.block_slices;
    const std::int64_t tiles = std::min(job.block_tiles, job.tiles_x - tx0), slices = std::min(job.block_slices, job.depth - z0);
    transform_input<VW>(job, sample, ty, tx0, tiles, z0, slices, s.patch.data(), s.v.data(), 0);
    multiply<VW, MR, NV>(job, tiles, slices, s.v.data(), s.m.data(), m_slices, 0, kPoints);
    transform_output<VW>(job, sample, ty, tx0, tiles, z0, slices, s.m.data(), m_slices, s.rows_out.data(), 0);
  }
}

// Whole planes, the three phases of one run of slices of one sample: the input transform of tile
// rows [begin, end), the products of Winograd points [begin, end), the output transform of tile
// rows [begin, end).
template <int VW, int MR, int NV>
MLSEG_ALWAYS_INLINE void input_rows(const Job& job, std::int64_t sample, std::int64_t z0, std::int64_t slices, float* v,
                                    std::int64_t begin, std::int64_t end) {
  Scratch& s = thread_scratch<MR>(job, false);
  for (std::int64_t ty = begin; ty < end; ++ty) {
    transform_input<VW>(job, sample, ty, 0, job.tiles_x, z0, slices, s.patch.data(), v, ty * job.tiles_x);
  }
}

template <int VW, int MR, int NV>
MLSEG_ALWAYS_INLINE void point_products(const Job& job, std::int64_t slices, const float* v, float* m, std::int64_t begin,
                                        std::int64_t end) {
  multiply<VW, MR, NV>(job, job.block_tiles, slices, v, m, product_slices(job, MR), begin, end);
}

template <int VW, int MR, int NV>
MLSEG_ALWAYS_INLINE void output_rows(const Job& job, std::int64_t sample, std::int64_t z0, std::int64_t slices, const float* m,
                                     std::int64_t begin, std::int64_t end) {
  Scratch& s = thread_scratch<MR>(job, false);
  for (std::int64_t ty = begin; ty < end; ++ty) {
    transform_output<VW>(job, sample, ty, 0, job.tiles_x, z0, slices, m, product_slices(job, MR), s.rows_out.data(),
                         ty * job.tiles_x);
  }
}

// One instruction set's entry points: plain functions (a lambda inside a function compiled for
// AVX-512 would itself be compiled for baseline x86-64), called from the parallel loops below.
struct Kernels {
  int rows_per_product = 1;  // MR: the product rows are padded to a multiple of it
  void (*blocks)(const Job&, std::int64_t, std::int64_t);
  void (*input_rows)(const Job&, std::int64_t, std::int64_t, std::int64_t, float*, std::int64_t, std::int64_t);
  void (*point_products)(const Job&, std::int64_t, const float*, float*, std::int64_t, std::int64_t);
  void (*output_rows)(const Job&, std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t, std::int64_t);
};

#define MLSEG_WINOGRAD_KERNELS(SUFFIX, ATTRIBUTE, VW, MR, NV)                                                                    \
  ATTRIBUTE void blocks_##SUFFIX(const Job& job, std::int64_t begin, std::int64_t end) { run_blocks<VW, MR, NV>(job, begin, end); } \
  ATTRIBUTE void input_rows_##SUFFIX(const Job& job, std::int64_t sample, std::int64_t z0, std::int64_t slices, float* v,     \
                                     std::int64_t begin, std::int64_t end) {                                                 \
    input_rows<VW, MR, NV>(job, sample, z0, slices, v, begin, end);                                                              \
  }                                                                                                                          \
  ATTRIBUTE void point_products_##SUFFIX(const Job& job, std::int64_t slices, const float* v, float* m, std::int64_t begin,   \
                                         std::int64_t end) {                                                                 \
    point_products<VW, MR, NV>(job, slices, v, m, begin, end);                                                                   \
  }                                                                                                                          \
  ATTRIBUTE void output_rows_##SUFFIX(const Job& job, std::int64_t sample, std::int64_t z0, std::int64_t slices,              \
                                      const float* m, std::int64_t begin, std::int64_t end) {                                \
    output_rows<VW, MR, NV>(job, sample, z0, slices, m, begin, end);                                                             \
  }                                                                                                                          \
  const Kernels kKernels_##SUFFIX{MR, blocks_##SUFFIX, input_rows_##SUFFIX, point_products_##SUFFIX, output_rows_##SUFFIX};

MLSEG_WINOGRAD_KERNELS(baseline, , 4, 4, 2)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define MLSEG_WINOGRAD_X86_CLONES 1
MLSEG_WINOGRAD_KERNELS(avx2, __attribute__((target("arch=x86-64-v3"))), 8, 4, 2)
MLSEG_WINOGRAD_KERNELS(avx512, __attribute__((target("arch=x86-64-v4"))), 16, 8, 2)
#endif
#undef MLSEG_WINOGRAD_KERNELS

const Kernels& kernels() {
#ifdef MLSEG_WINOGRAD_X86_CLONES
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return kKernels_avx512;
  if (__builtin_cpu_supports("x86-64-v3")) return kKernels_avx2;
#endif
  return kKernels_baseline;
}

// Runs the job on LibTorch's threads: blocks (each on one thread), or runs of whole planes (each
// phase split over the threads; each point's weight read once).
void run_job(const Job& job, const Kernels& k) {
  if (!job.whole_planes) {
    at::parallel_for(0, job.block_count(), 1, [&](std::int64_t begin, std::int64_t end) { k.blocks(job, begin, end); });
    return;
  }
  thread_local std::vector<float> v, m;  // kept, as the per-thread scratch
  v.resize(v_floats(job, k.rows_per_product));
  m.resize(m_floats(job, k.rows_per_product));
  float* vp = v.data();  // the worker threads see their own thread_local v and m: pass pointers
  float* mp = m.data();
  for (std::int64_t sample = 0; sample < job.batch; ++sample) {
    for (std::int64_t z0 = 0; z0 < job.depth; z0 += job.block_slices) {
      const std::int64_t slices = std::min(job.block_slices, job.depth - z0);
      at::parallel_for(0, job.tiles_y, 1, [&](std::int64_t begin, std::int64_t end) {
        k.input_rows(job, sample, z0, slices, vp, begin, end);
      });
      at::parallel_for(0, kPoints, 1, [&](std::int64_t begin, std::int64_t end) { k.point_products(job, slices, vp, mp, begin, end); });
      at::parallel_for(0, job.tiles_y, 1, [&](std::int64_t begin, std::int64_t end) {
        k.output_rows(job, sample, z0, slices, mp, begin, end);
      });
    }
  }
}

// Block shape. Weights larger than kWholePlanesWeightBytes (the deep stages): whole planes, as many
// slices as fit kWholePlanesBytes. Otherwise blocks on one thread each: as many slices (up to
// kMaxBlockSlices) and tiles along x as fit kBlockBytes, and enough blocks for every thread.
void choose_blocks(Job& job) {
  const std::int64_t weight_bytes = kPoints * job.depth_k * job.padded_out * static_cast<std::int64_t>(sizeof(float));
  const std::int64_t bytes_per_tile_slice = kPoints * static_cast<std::int64_t>(sizeof(float)) * (job.padded_in + job.padded_out);
  if (weight_bytes > kWholePlanesWeightBytes) {
    job.whole_planes = true;
    job.block_tiles = job.tiles_y * job.tiles_x;
    job.block_slices = std::clamp<std::int64_t>(kWholePlanesBytes / (bytes_per_tile_slice * job.block_tiles) - 2, 1, job.depth);
    // whole groups of the product kernel's 8 rows (at most 1.6x the budget)
    if (job.block_slices > kMaxBlockSlices / 2) job.block_slices = std::min(job.depth, round_up(job.block_slices, kMaxBlockSlices));
    job.blocks_x = job.blocks_z = 1;
    return;
  }
  job.block_slices = std::min(job.depth, kMaxBlockSlices);
  while (job.block_slices > 1 && bytes_per_tile_slice * (job.block_slices + 2) > kBlockBytes) --job.block_slices;
  job.block_tiles = std::clamp<std::int64_t>(kBlockBytes / (bytes_per_tile_slice * (job.block_slices + 2)), 1, job.tiles_x);
  job.blocks_x = (job.tiles_x + job.block_tiles - 1) / job.block_tiles;
  job.blocks_z = (job.depth + job.block_slices - 1) / job.block_slices;
  const std::int64_t wanted = 4 * static_cast<std::int64_t>(at::get_num_threads());
  while (job.block_count() < wanted && job.block_tiles > 1) {
    job.block_tiles = (job.block_tiles + 1) / 2;
    job.blocks_x = (job.tiles_x + job.block_tiles - 1) / job.block_tiles;
  }
}

}  // namespace

void set_winograd_enabled(bool enabled) { enabled_flag().store(enabled); }
bool winograd_enabled() { return enabled_flag().load(); }

bool winograd_applicable(const torch::Tensor& x, const torch::Tensor& weight, c10::IntArrayRef stride,
                         c10::IntArrayRef padding) {
  if (!winograd_enabled() || x.dim() != 5 || weight.dim() != 5 || !x.device().is_cpu() || x.scalar_type() != torch::kFloat) return false;
  for (std::int64_t a = 0; a < 3; ++a) {
    if (weight.size(2 + a) != kTaps) return false;
  }
  for (const auto s : stride) {
    if (s != 1) return false;
  }
  for (const auto p : padding) {
    if (p != 1) return false;
  }
  return weight.size(1) == x.size(1) && x.size(1) >= WinogradPolicy::kMinChannels &&
         weight.size(0) >= WinogradPolicy::kMinChannels && x.size(3) * x.size(4) >= WinogradPolicy::kMinPlaneVoxels;
}

WinogradWeights transform_winograd_weights(const torch::Tensor& weight) {
  if (weight.dim() != 5 || weight.size(2) != kTaps || weight.size(3) != kTaps || weight.size(4) != kTaps) {
    throw Error("the Winograd convolution got a weight that is not [Cout, Cin, 3, 3, 3]", kFix);
  }
  WinogradWeights w;
  w.out_channels = weight.size(0);
  w.in_channels = weight.size(1);
  w.padded_in = round_up(w.in_channels, kChannelAlign);
  w.padded_out = round_up(w.out_channels, kPanel);
  const std::int64_t panel_count = w.padded_out / kPanel, depth_k = kTaps * w.padded_in;
  w.panels.assign(static_cast<std::size_t>(kPoints * panel_count * depth_k * kPanel), 0.0f);
  const torch::Tensor g = weight.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const double* gp = g.data_ptr<double>();
  // G of F(4, 3), rows = Winograd points.
  static constexpr double kG[kTileSide][kTaps] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                                  {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                                  {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  float* panels = w.panels.data();
  at::parallel_for(0, w.out_channels, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t o = first; o < last; ++o) {
      for (std::int64_t c = 0; c < w.in_channels; ++c) {
        for (int kz = 0; kz < kTaps; ++kz) {
          const double* taps = gp + ((o * w.in_channels + c) * kTaps + kz) * kTaps * kTaps;  // [ky][kx]
          double half[kTileSide][kTaps];                                                    // G g
          for (int i = 0; i < kTileSide; ++i) {
            for (int b = 0; b < kTaps; ++b) {
              half[i][b] = kG[i][0] * taps[0 * kTaps + b] + kG[i][1] * taps[1 * kTaps + b] + kG[i][2] * taps[2 * kTaps + b];
            }
          }
          for (int i = 0; i < kTileSide; ++i) {
            for (int j = 0; j < kTileSide; ++j) {
              const double u = half[i][0] * kG[j][0] + half[i][1] * kG[j][1] + half[i][2] * kG[j][2];
              const std::int64_t p = i * kTileSide + j, k = kz * w.padded_in + c;
              panels[((p * panel_count + o / kPanel) * depth_k + k) * kPanel + o % kPanel] = static_cast<float>(u);
            }
          }
        }
      }
    }
  });
  return w;
}

const WinogradWeights& WinogradWeightCache::get(const torch::Tensor& weight) {
  const auto version = static_cast<std::int64_t>(weight._version());
  if (source_ != weight.data_ptr() || version_ != version || weights_.out_channels != weight.size(0) ||
      weights_.in_channels != weight.size(1)) {
    weights_ = transform_winograd_weights(weight);
    source_ = weight.data_ptr();
    version_ = version;
  }
  return weights_;
}

torch::Tensor winograd_conv3d(const torch::Tensor& x, const WinogradWeights& weights, const torch::Tensor& bias,
                              torch::Tensor out) {
  if (x.dim() != 5 || !x.device().is_cpu() || x.scalar_type() != torch::kFloat || x.size(1) != weights.in_channels) {
    throw Error("the Winograd convolution got an input that is not float32 [B, " + std::to_string(weights.in_channels) +
                    ", D, H, W] on the CPU",
                kFix);
  }
  if (bias.defined() && bias.numel() != weights.out_channels) {
    throw Error("the Winograd convolution got a bias of " + std::to_string(bias.numel()) + " values for " +
                    std::to_string(weights.out_channels) + " output channels",
                kFix);
  }
  const torch::Tensor input = x.contiguous();
  const std::vector<std::int64_t> shape{x.size(0), weights.out_channels, x.size(2), x.size(3), x.size(4)};
  if (!out.defined()) {
    out = torch::empty(shape, x.options());
  } else if (out.sizes() != c10::IntArrayRef(shape) || !out.is_contiguous() || out.scalar_type() != torch::kFloat ||
             !out.device().is_cpu()) {
    throw Error("the Winograd convolution got an output buffer that is not contiguous float32 of the output's shape", kFix);
  }
  if (out.numel() == 0) return out;
  std::vector<float> padded_bias(static_cast<std::size_t>(weights.padded_out), 0.0f);
  if (bias.defined()) {
    const torch::Tensor b = bias.detach().to(torch::kCPU, torch::kFloat).contiguous();
    std::copy(b.data_ptr<float>(), b.data_ptr<float>() + b.numel(), padded_bias.begin());
  }
  Job job;
  job.x = input.data_ptr<float>();
  job.out = out.data_ptr<float>();
  job.bias = padded_bias.data();
  job.panels = weights.panels.data();
  job.batch = x.size(0);
  job.in_channels = weights.in_channels;
  job.out_channels = weights.out_channels;
  job.depth = x.size(2);
  job.height = x.size(3);
  job.width = x.size(4);
  job.tiles_y = (job.height + kOutSide - 1) / kOutSide;
  job.tiles_x = (job.width + kOutSide - 1) / kOutSide;
  job.padded_in = weights.padded_in;
  job.padded_out = weights.padded_out;
  job.depth_k = kTaps * weights.padded_in;
  job.panel_count = weights.padded_out / kPanel;
  choose_blocks(job);
  static const Kernels& k = kernels();
  run_job(job, k);
  return out;
}

}  // namespace mlseg
