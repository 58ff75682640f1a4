#include "mlseg/core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mlseg {

std::string format_duration(double seconds) {
  char buffer[64];
  if (seconds < 60) {
    std::snprintf(buffer, sizeof buffer, "%.1f s", seconds);
  } else if (seconds < 3600) {
    const int total = static_cast<int>(seconds + 0.5);
    std::snprintf(buffer, sizeof buffer, "%d min %02d s", total / 60, total % 60);
  } else {
    const int minutes = static_cast<int>(seconds / 60 + 0.5);
    std::snprintf(buffer, sizeof buffer, "%d h %02d min", minutes / 60, minutes % 60);
  }
  return buffer;
}

Progress::Progress(std::string task, std::int64_t total, std::string unit, ProgressOptions options)
    : task_(std::move(task)), total_(total), unit_(std::move(unit)), options_(options) {
  tty_ = isatty(fileno(stderr)) != 0;
  start_ = last_print_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(std::int64_t amount) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += amount;
  const auto now = std::chrono::steady_clock::now();
  const double since_last = std::chrono::duration<double>(now - last_print_).count();
  const double interval = tty_ ? options_.min_interval_s : options_.min_interval_log_s;
  if (since_last >= interval && done_ < total_) {
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  print(true);
}

void Progress::print(bool final_line) {
  if (!options_.enabled) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = task_ + ": " + std::to_string(done_) + "/" + std::to_string(total_) + " " +
                     unit_;
  if (total_ > 0) line += " (" + std::to_string(done_ * 100 / total_) + "%)";
  line += ", " + format_duration(elapsed);
  if (!final_line && done_ > 0 && total_ > done_) {
    line += ", ETA " + format_duration(elapsed / done_ * (total_ - done_));
  }
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace mlseg
