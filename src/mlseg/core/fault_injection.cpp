#include "mlseg/core/fault_injection.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace mlseg {
namespace {

struct FaultSpec {
  std::string point;
  long after = 1;
};

const FaultSpec& spec() {
  static const FaultSpec parsed = [] {
    FaultSpec s;
    const char* value = std::getenv("MLSEG_FAULT");
    if (value == nullptr) return s;
    s.point = value;
    if (const auto colon = s.point.find(':'); colon != std::string::npos) {
      s.after = std::max(1L, std::strtol(s.point.c_str() + colon + 1, nullptr, 10));
      s.point.resize(colon);
    }
    return s;
  }();
  return parsed;
}

}  // namespace

void fault_point(const char* point) {
  const FaultSpec& s = spec();
  if (s.point.empty() || s.point != point) return;
  static std::atomic<long> reached{0};
  if (++reached == s.after) kill(getpid(), SIGKILL);
}

}  // namespace mlseg
