#pragma once
// The loop over cases that folder commands share (ensemble, postprocess, model selection): items
// on several threads with a progress line, and a failing item does not stop the others; its
// mlseg::Error is kept with where it happened, and the first, in item order, is thrown at the end.
#include <cstddef>
#include <functional>
#include <string>

#include "mlseg/core/error.h"

namespace mlseg {

struct CaseLoopOptions {
  std::string task;  ///< progress label, e.g. "ensemble"
  std::string unit = "cases";
  int threads = 0;  ///< 0 = all cores
  bool show_progress = true;
};

/// Calls fn(i) for every i in [0, count). An mlseg::Error thrown by fn(i) is located with
/// where(i) (its empty parts filled in) and rethrown after every item has run; the first failing
/// item's error wins.
void for_each_case(std::size_t count, const CaseLoopOptions& options, const std::function<void(std::size_t)>& fn,
                   const std::function<ErrorLocation(std::size_t)>& where);

}  // namespace mlseg
