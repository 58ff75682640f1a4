#pragma once
// parallel_for: run fn(i) for i in [0, count) on up to `threads` threads.
#include <cstddef>
#include <functional>

namespace mlseg {

/// Hardware concurrency, at least 1.
int default_thread_count();

/// Calls fn(i) once for every i in [0, count), in no particular order, on at most `threads`
/// threads (threads <= 0 means default_thread_count()). fn must not throw: collect failures
/// inside fn (a failure of one item must not lose the others).
void parallel_for(std::size_t count, int threads, const std::function<void(std::size_t)>& fn);

}  // namespace mlseg
