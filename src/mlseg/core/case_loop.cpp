#include "mlseg/core/case_loop.h"

#include <optional>
#include <vector>

#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"

namespace mlseg {

void for_each_case(std::size_t count, const CaseLoopOptions& options, const std::function<void(std::size_t)>& fn,
                   const std::function<ErrorLocation(std::size_t)>& where) {
  std::vector<std::optional<Error>> failures(count);
  Progress progress(options.task, static_cast<std::int64_t>(count), options.unit, ProgressOptions{options.show_progress});
  parallel_for(count, options.threads > 0 ? options.threads : default_thread_count(), [&](std::size_t i) {
    try {
      fn(i);
    } catch (const Error& error) {
      failures[i] = error.located(where(i));
    }
    progress.advance();
  });
  progress.finish();
  for (const auto& failure : failures) {
    if (failure) throw *failure;
  }
}

}  // namespace mlseg
