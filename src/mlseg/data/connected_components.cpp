#include "mlseg/data/connected_components.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <string>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"

namespace mlseg {
namespace {

// A slab smaller than this is not worth a thread of its own (2^21 voxels: 8 slices of 512 x 512).
constexpr std::int64_t kMinVoxelsPerSlab = std::int64_t{1} << 21;
// Slabs per thread: a thread slowed down by other work leaves its remaining slabs to the others.
constexpr std::int64_t kSlabsPerThread = 4;
// Run indices and labels are int32; one value is kept free so that counts never overflow.
constexpr std::int64_t kMaxRuns = std::numeric_limits<std::int32_t>::max() - 1;

const std::string kMaskFix = "pass one channel as a [Z, Y, X] bool or uint8 CPU tensor (mask[c] of a [C, Z, Y, X] volume, "
                             "image.unsqueeze(0) for a 2-D image, (mask != 0) for other types)";

using RunIndex = std::int32_t;

/// Foreground voxels [begin, end) of one row.
struct Run {
  std::int32_t begin;
  std::int32_t end;
};

/// The mask's bytes (nonzero: foreground) and shape.
struct Volume {
  const std::uint8_t* data = nullptr;
  std::int64_t depth = 0, height = 0, width = 0;
  const std::uint8_t* row(std::int64_t z, std::int64_t y) const { return data + (z * height + y) * width; }
};

/// The runs of slices [z_begin, z_end) in scan order, and their union-find forest in slab-local
/// indices until the slabs are joined.
struct Slab {
  std::int64_t z_begin = 0, z_end = 0;
  std::vector<Run> runs;
  std::vector<RunIndex> row_first_run;  ///< per local row (z - z_begin) * height + y, plus the end
  std::vector<RunIndex> parent;
  RunIndex first_global_run = 0;
};

/// The runs of one row, and the index (local or global) of the first.
struct RowRuns {
  const Run* runs;
  RunIndex first;
  RunIndex count;
};

RowRuns row_runs(const Slab& slab, std::int64_t local_row, RunIndex index_base) {
  const RunIndex begin = slab.row_first_run[static_cast<std::size_t>(local_row)];
  const RunIndex end = slab.row_first_run[static_cast<std::size_t>(local_row) + 1];
  return {slab.runs.data() + begin, index_base + begin, end - begin};
}

RunIndex find_root(RunIndex* parent, RunIndex run) {
  while (parent[run] != run) {
    parent[run] = parent[parent[run]];  // path halving
    run = parent[run];
  }
  return run;
}

// The lower index becomes the root, so a root is its component's first run in scan order and
// every run's parent precedes it (which numbering in one sweep relies on).
void unite(RunIndex* parent, RunIndex a, RunIndex b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a < b) parent[b] = a;
  else if (b < a) parent[a] = b;
}

// Joins the runs of two neighbouring rows that touch under full connectivity: their x-intervals
// overlap or end next to each other diagonally (a.begin <= b.end and b.begin <= a.end, ends
// exclusive). Both lists are sorted, so one merge-like pass finds every touching pair.
void unite_touching(const RowRuns& a, const RowRuns& b, RunIndex* parent) {
  RunIndex i = 0, j = 0;
  while (i < a.count && j < b.count) {
    const Run& run_a = a.runs[i];
    const Run& run_b = b.runs[j];
    if (run_a.begin <= run_b.end && run_b.begin <= run_a.end) unite(parent, a.first + i, b.first + j);
    if (run_a.end <= run_b.end) ++i;
    else ++j;
  }
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
// Eight voxels at a time: masks are mostly background, and most rows of a volume are empty.
constexpr bool kWordScan = true;
int first_nonzero_byte(std::uint64_t word) { return __builtin_ctzll(word) / 8; }
#else
constexpr bool kWordScan = false;
int first_nonzero_byte(std::uint64_t) { return 0; }
#endif
constexpr std::int64_t kWordBytes = 8;
constexpr std::uint64_t kLowBits = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

std::uint64_t load_word(const std::uint8_t* bytes) {
  std::uint64_t word;
  std::memcpy(&word, bytes, sizeof word);
  return word;
}

/// The first foreground x >= `x` in the row, or `width`.
std::int64_t next_foreground(const std::uint8_t* row, std::int64_t x, std::int64_t width) {
  if constexpr (kWordScan) {
    for (; x + kWordBytes <= width; x += kWordBytes) {
      const std::uint64_t word = load_word(row + x);
      if (word != 0) return x + first_nonzero_byte(word);
    }
  }
  while (x < width && row[x] == 0) ++x;
  return x;
}

/// The first background x >= `x` in the row, or `width`.
std::int64_t next_background(const std::uint8_t* row, std::int64_t x, std::int64_t width) {
  if constexpr (kWordScan) {
    for (; x + kWordBytes <= width; x += kWordBytes) {
      const std::uint64_t word = load_word(row + x);
      // The lowest marked byte is exactly the first zero byte (higher marks may be false).
      const std::uint64_t zero_bytes = (word - kLowBits) & ~word & kHighBits;
      if (zero_bytes != 0) return x + first_nonzero_byte(zero_bytes);
    }
  }
  while (x < width && row[x] != 0) ++x;
  return x;
}

void append_runs(const std::uint8_t* row, std::int64_t width, std::vector<Run>& runs) {
  std::int64_t x = next_foreground(row, 0, width);
  while (x < width) {
    const std::int64_t end = next_background(row, x, width);
    runs.push_back({static_cast<std::int32_t>(x), static_cast<std::int32_t>(end)});
    x = next_foreground(row, end, width);
  }
}

// Cuts the slab's rows into runs and joins each run with the runs it touches in the rows scanned
// before it within the slab: (z, y-1) and (z-1, y-1..y+1).
void scan_slab(const Volume& volume, Slab& slab) {
  const std::int64_t rows = (slab.z_end - slab.z_begin) * volume.height;
  slab.row_first_run.assign(static_cast<std::size_t>(rows) + 1, 0);
  for (std::int64_t z = slab.z_begin; z < slab.z_end; ++z) {
    for (std::int64_t y = 0; y < volume.height; ++y) {
      const std::int64_t row = (z - slab.z_begin) * volume.height + y;
      const RunIndex first = static_cast<RunIndex>(slab.runs.size());
      slab.row_first_run[static_cast<std::size_t>(row)] = first;
      append_runs(volume.row(z, y), volume.width, slab.runs);
      const RunIndex end = static_cast<RunIndex>(slab.runs.size());
      slab.row_first_run[static_cast<std::size_t>(row) + 1] = end;
      if (end == first) continue;
      for (RunIndex run = first; run < end; ++run) slab.parent.push_back(run);
      const RowRuns current = row_runs(slab, row, 0);
      if (y > 0) unite_touching(current, row_runs(slab, row - 1, 0), slab.parent.data());
      if (z == slab.z_begin) continue;
      for (std::int64_t dy = -1; dy <= 1; ++dy) {
        if (y + dy < 0 || y + dy >= volume.height) continue;
        unite_touching(current, row_runs(slab, row - volume.height + dy, 0), slab.parent.data());
      }
    }
  }
}

/// Every run of the volume with its component's label (1..n, numbered in scan order).
struct Labelling {
  torch::Tensor contiguous_mask;  ///< keeps `volume.data` alive
  Volume volume;
  std::vector<Slab> slabs;
  std::vector<RunIndex> run_label;  ///< by global run index (slab.first_global_run + local)
  std::vector<std::int64_t> sizes;  ///< sizes[label - 1]
};

std::string shape_text(const torch::Tensor& tensor) {
  std::string text = "[";
  for (std::int64_t d = 0; d < tensor.dim(); ++d) text += (d ? ", " : "") + std::to_string(tensor.size(d));
  return text + "]";
}

Volume checked_volume(const torch::Tensor& mask) {
  if (!mask.defined()) throw Error("connected components: the mask is an undefined tensor", kMaskFix);
  if (mask.dim() != 3) {
    throw Error("connected components need a 3-D mask [Z, Y, X], got shape " + shape_text(mask), kMaskFix);
  }
  if (mask.scalar_type() != torch::kBool && mask.scalar_type() != torch::kUInt8) {
    throw Error(std::string("connected components need a bool or uint8 mask, got ") + c10::toString(mask.scalar_type()), kMaskFix);
  }
  if (!mask.device().is_cpu()) throw Error("connected components run on the CPU, the mask is on " + mask.device().str(), kMaskFix);
  Volume volume;
  volume.depth = mask.size(0);
  volume.height = mask.size(1);
  volume.width = mask.size(2);
  // At most one run per two voxels of a row: a bound from the shape alone, checked before any work.
  const std::int64_t max_runs = mask.numel() > 0 ? volume.depth * volume.height * ((volume.width + 1) / 2) : 0;
  if (max_runs > kMaxRuns || volume.width > std::numeric_limits<std::int32_t>::max()) {
    throw Error("connected components: a mask of shape " + shape_text(mask) + " may hold more components than int32 labels count",
                "label the volume in parts (e.g. halves along z) or downsample it");
  }
  return volume;
}

// Numbers the components in scan order: with every parent before its child, one sweep in run
// order meets each root (its component's first run) before the runs below it.
void number_components(Labelling& labelling) {
  RunIndex* label = labelling.run_label.data();
  RunIndex count = 0;
  for (const Slab& slab : labelling.slabs) {
    for (std::size_t local = 0; local < slab.runs.size(); ++local) {
      const RunIndex run = slab.first_global_run + static_cast<RunIndex>(local);
      const RunIndex parent = label[run];
      if (parent == run) {
        label[run] = ++count;
        labelling.sizes.push_back(0);
      } else {
        label[run] = label[parent];  // runs before `run` already hold labels
      }
      labelling.sizes[static_cast<std::size_t>(label[run]) - 1] += slab.runs[local].end - slab.runs[local].begin;
    }
  }
}

// Runs fn(slab) for every slab on `threads` threads; rethrows the first failure (e.g. bad_alloc).
template <typename Fn>
void for_each_slab(std::vector<Slab>& slabs, int threads, Fn fn) {
  std::vector<std::exception_ptr> failures(slabs.size());
  parallel_for(slabs.size(), threads, [&](std::size_t s) {
    try {
      fn(slabs[s]);
    } catch (...) {
      failures[s] = std::current_exception();
    }
  });
  for (const auto& failure : failures) {
    if (failure) std::rethrow_exception(failure);
  }
}

// num_slabs <= 0: chosen from the volume's size and the thread count.
Labelling label_runs(const torch::Tensor& mask, std::int64_t num_slabs, int threads) {
  Labelling labelling;
  labelling.volume = checked_volume(mask);
  Volume& volume = labelling.volume;
  labelling.contiguous_mask = mask.contiguous();
  volume.data = static_cast<const std::uint8_t*>(labelling.contiguous_mask.data_ptr());
  if (threads <= 0) threads = default_thread_count();
  if (volume.depth == 0) return labelling;
  if (num_slabs <= 0) {
    const std::int64_t by_size = volume.depth * volume.height * volume.width / kMinVoxelsPerSlab;
    num_slabs = threads == 1 ? 1 : std::min<std::int64_t>(by_size, threads * kSlabsPerThread);
  }
  num_slabs = std::clamp<std::int64_t>(num_slabs, 1, volume.depth);

  labelling.slabs.resize(static_cast<std::size_t>(num_slabs));
  for (std::int64_t s = 0; s < num_slabs; ++s) {
    labelling.slabs[s].z_begin = volume.depth * s / num_slabs;
    labelling.slabs[s].z_end = volume.depth * (s + 1) / num_slabs;
  }
  for_each_slab(labelling.slabs, threads, [&](Slab& slab) { scan_slab(volume, slab); });

  // One forest in global indices (checked_volume bounds the total), slabs in z order.
  std::size_t total_runs = 0;
  for (Slab& slab : labelling.slabs) {
    slab.first_global_run = static_cast<RunIndex>(total_runs);
    total_runs += slab.runs.size();
  }
  labelling.run_label.resize(total_runs);
  RunIndex* parent = labelling.run_label.data();
  for_each_slab(labelling.slabs, threads, [&](Slab& slab) {
    for (std::size_t local = 0; local < slab.parent.size(); ++local) {
      parent[slab.first_global_run + static_cast<RunIndex>(local)] = slab.first_global_run + slab.parent[local];
    }
    std::vector<RunIndex>().swap(slab.parent);
  });

  // Join each slab's first slice with the previous slab's last slice.
  for (std::size_t s = 1; s < labelling.slabs.size(); ++s) {
    const Slab& below = labelling.slabs[s - 1];
    const Slab& slab = labelling.slabs[s];
    const std::int64_t below_last_slice = (below.z_end - below.z_begin - 1) * volume.height;
    for (std::int64_t y = 0; y < volume.height; ++y) {
      const RowRuns current = row_runs(slab, y, slab.first_global_run);
      if (current.count == 0) continue;
      for (std::int64_t dy = -1; dy <= 1; ++dy) {
        if (y + dy < 0 || y + dy >= volume.height) continue;
        unite_touching(current, row_runs(below, below_last_slice + y + dy, below.first_global_run), parent);
      }
    }
  }
  number_components(labelling);
  return labelling;
}

// Outputs at least this large are allocated on transparent huge pages where the system allows it
// (numpy does the same from 4 MiB). A 400 x 512 x 512 int32 label volume is written right after its
// allocation, and its ~100,000 first-touch faults on 4 KiB pages were most of the labelling's time:
// BM_ConnectedComponentsLabelsOnly512x512x400x16 (2-core EPYC VM) 3.7 s with 4 KiB pages, 1.1 s
// with huge pages; keep_largest_component on the 16 channels 1.1 s and 0.5 s.
constexpr std::size_t kHugePageAdviceMinBytes = std::size_t{4} << 20;
constexpr std::uintptr_t kHugePageBytes = std::uintptr_t{2} << 20;  // x86-64 and 4 KiB-page arm64

/// An uninitialised [Z, Y, X] tensor of `dtype`, advised onto huge pages before its first write.
torch::Tensor empty_volume(const Volume& volume, torch::ScalarType dtype) {
  torch::Tensor out = torch::empty({volume.depth, volume.height, volume.width}, torch::TensorOptions().dtype(dtype));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const std::size_t bytes = out.nbytes();
  if (bytes >= kHugePageAdviceMinBytes) {
    const auto address = reinterpret_cast<std::uintptr_t>(out.data_ptr());
    const std::uintptr_t begin = (address + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
    const std::uintptr_t end = (address + bytes) & ~(kHugePageBytes - 1);
    // Advice only: where it is refused (THP off, another page size), the pages are 4 KiB ones.
    if (begin < end) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
  return out;
}

/// A [Z, Y, X] tensor of `dtype` (element type T): value_of(label) on each run, 0 elsewhere.
/// Every element is written once.
template <typename T, typename ValueOf>
torch::Tensor write_volume(Labelling& labelling, torch::ScalarType dtype, ValueOf value_of, int threads) {
  const Volume& volume = labelling.volume;
  torch::Tensor out = empty_volume(volume, dtype);
  T* data = out.data_ptr<T>();
  const RunIndex* run_label = labelling.run_label.data();
  for_each_slab(labelling.slabs, threads, [&](Slab& slab) {
    T* row_out = data + slab.z_begin * volume.height * volume.width;
    const std::size_t rows = slab.row_first_run.size() - 1;
    for (std::size_t row = 0; row < rows; ++row, row_out += volume.width) {
      std::int64_t x = 0;
      for (RunIndex local = slab.row_first_run[row]; local < slab.row_first_run[row + 1]; ++local) {
        const Run& run = slab.runs[static_cast<std::size_t>(local)];
        std::fill(row_out + x, row_out + run.begin, T{0});
        std::fill(row_out + run.begin, row_out + run.end, value_of(run_label[slab.first_global_run + local]));
        x = run.end;
      }
      std::fill(row_out + x, row_out + volume.width, T{0});
    }
  });
  return out;
}

ComponentLabels component_labels(const torch::Tensor& mask, std::int64_t num_slabs, int threads) {
  Labelling labelling = label_runs(mask, num_slabs, threads);
  ComponentLabels result;
  result.labels = write_volume<std::int32_t>(labelling, torch::kInt32, [](RunIndex label) { return label; }, threads);
  result.sizes = std::move(labelling.sizes);
  return result;
}

}  // namespace

namespace detail {

ComponentLabels label_components_in_slabs(const torch::Tensor& mask, std::int64_t num_slabs, int threads) {
  return component_labels(mask, std::max<std::int64_t>(num_slabs, 1), threads);
}

}  // namespace detail

ComponentLabels label_components(const torch::Tensor& mask) { return component_labels(mask, 0, 0); }

torch::Tensor keep_largest_component(const torch::Tensor& mask) {
  Labelling labelling = label_runs(mask, 0, 0);
  RunIndex largest = 0;  // none: an empty mask stays empty
  std::int64_t largest_size = 0;
  for (std::size_t i = 0; i < labelling.sizes.size(); ++i) {
    if (labelling.sizes[i] > largest_size) {  // strict: ties keep the lower label
      largest_size = labelling.sizes[i];
      largest = static_cast<RunIndex>(i) + 1;
    }
  }
  return write_volume<bool>(labelling, torch::kBool, [largest](RunIndex label) { return label == largest; }, 0);
}

torch::Tensor remove_small_components(const torch::Tensor& mask, std::int64_t min_voxels) {
  if (min_voxels < 0) {
    throw Error("remove_small_components: min_voxels is " + std::to_string(min_voxels) + ", a negative size",
                "pass 0 to keep every component, or the smallest size to keep");
  }
  Labelling labelling = label_runs(mask, 0, 0);
  std::vector<std::uint8_t> keep(labelling.sizes.size() + 1, 0);  // by label; 0 is background
  for (std::size_t i = 0; i < labelling.sizes.size(); ++i) keep[i + 1] = labelling.sizes[i] >= min_voxels;
  return write_volume<bool>(labelling, torch::kBool, [&keep](RunIndex label) { return keep[static_cast<std::size_t>(label)] != 0; }, 0);
}

}  // namespace mlseg
