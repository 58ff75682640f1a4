#pragma once
// Running any executable from a test (test_support.h's run_mlseg runs this build's mlseg).
#include <filesystem>
#include <string>

#include "test_support.h"

namespace mlseg::testing {

/// Runs `executable` with `arguments` (shell-quoted by the caller); stdout and stderr captured.
CommandResult run_executable(const std::filesystem::path& executable, const std::string& arguments);

/// A TCP port free on the loopback interface now (the kernel's pick), for rendezvous in tests.
int free_loopback_port();

}  // namespace mlseg::testing
