#include "mlseg/inference/block_reuse.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace mlseg {
namespace {

std::atomic<int> g_scopes{0};
std::atomic<std::size_t> g_hits{0};

// Freed blocks by size and their total; the size of every block of the kept range handed out.
struct Kept {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> blocks;
  std::size_t bytes = 0;
  std::unordered_map<void*, std::size_t> sizes;
};

Kept& kept() {
  static Kept* k = new Kept();  // never destroyed: tensors may be freed during static destruction
  return *k;
}

// The deleter of blocks of the kept range (context == data, as LibTorch's raw_deallocate needs).
void release_block(void* data) {
  Kept& k = kept();
  {
    std::lock_guard<std::mutex> lock(k.mutex);
    const auto found = k.sizes.find(data);
    if (found != k.sizes.end()) {
      const std::size_t size = found->second;
      if (g_scopes.load() > 0 && k.bytes + size <= BlockReuseOptions::kMaxKeptBytes) {
        k.blocks[size].push_back(data);
        k.bytes += size;
        return;
      }
      k.sizes.erase(found);
    }
  }
  c10::free_cpu(data);
}

void release_all_kept() {
  Kept& k = kept();
  std::lock_guard<std::mutex> lock(k.mutex);
  for (auto& [size, blocks] : k.blocks) {
    for (void* data : blocks) {
      k.sizes.erase(data);
      c10::free_cpu(data);
    }
  }
  k.blocks.clear();
  k.bytes = 0;
}

class ReusingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t n) const override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n < BlockReuseOptions::kMinBlockBytes || n > BlockReuseOptions::kMaxBlockBytes) {
      void* data = c10::alloc_cpu(n);
      return {data, data, &c10::free_cpu, cpu};
    }
    Kept& k = kept();
    std::lock_guard<std::mutex> lock(k.mutex);
    auto found = k.blocks.find(n);
    if (g_scopes.load() > 0 && found != k.blocks.end() && !found->second.empty()) {
      void* data = found->second.back();
      found->second.pop_back();
      k.bytes -= n;
      g_hits.fetch_add(1);
      return {data, data, &release_block, cpu};
    }
    void* data = c10::alloc_cpu(n);
    k.sizes[data] = n;
    return {data, data, &release_block, cpu};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release_block; }

  // LibTorch 2.3+ declares it pure virtual (no `override`: 1.13 has no such member).
  void copy_data(void* destination, const void* source, std::size_t count) const { std::memcpy(destination, source, count); }
};

void install_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    static ReusingCpuAllocator allocator;
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  });
}

}  // namespace

static bool reuse_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("MLSEG_BLOCK_REUSE");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
}

BlockReuseScope::BlockReuseScope() : active_(reuse_enabled()) {
  if (!active_) return;
  install_once();
  g_scopes.fetch_add(1);
}

BlockReuseScope::~BlockReuseScope() {
  if (active_ && g_scopes.fetch_sub(1) == 1) release_all_kept();
}

std::size_t reused_block_bytes_kept() {
  Kept& k = kept();
  std::lock_guard<std::mutex> lock(k.mutex);
  return k.bytes;
}

std::size_t reused_block_hits() { return g_hits.load(); }

}  // namespace mlseg
