#pragma once
// Helpers shared by the verify tests.
#include <string>

#include "mlseg/verify/verify.h"

namespace mlseg::testing {

/// Two threads, no progress output.
inline VerifyOptions quiet_verify_options() {
  VerifyOptions options;
  options.threads = 2;
  options.show_progress = false;
  return options;
}

/// "code (case) file: message" per problem, for failure messages.
inline std::string describe(const VerifyReport& report) {
  std::string text;
  for (const auto& p : report.problems) {
    text += std::string(p.severity == Severity::error ? "ERROR " : "warning ") + p.code + " (" + p.case_id + ") " +
            p.file + ": " + p.message + "\n";
  }
  return text;
}

}  // namespace mlseg::testing
