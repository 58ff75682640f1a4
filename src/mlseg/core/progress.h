#pragma once
// Progress: "verify: 37/200 cases (18%), 2.1 s, ETA 7.3 s" on stderr for long work.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace mlseg {

struct ProgressOptions {
  bool enabled = true;             ///< false for -q and for machine-readable runs
  double min_interval_s = 0.5;     ///< at most one update per interval (TTY)
  double min_interval_log_s = 5.0;  ///< at most one line per interval when stderr is not a TTY
};

/// Thread-safe progress counter that prints rate-limited updates and a final line.
class Progress {
 public:
  Progress(std::string task, std::int64_t total, std::string unit, ProgressOptions options = {});
  ~Progress();
  void advance(std::int64_t amount = 1);
  void finish();

 private:
  void print(bool final_line);

  std::string task_;
  std::int64_t total_;
  std::string unit_;
  ProgressOptions options_;
  std::int64_t done_ = 0;
  bool finished_ = false;
  bool tty_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  std::mutex mutex_;
};

/// "0.8 s", "2 min 05 s", "1 h 02 min".
std::string format_duration(double seconds);

}  // namespace mlseg
