#pragma once
// Shared helpers for the test suite: temporary folders, the real-data folder, running the CLI.
#include <filesystem>
#include <string>

namespace mlseg::testing {

/// ../shared/data (or $MLSEG_DATA). Tests that need it call skip_without_shared_data() first.
std::filesystem::path shared_data_dir();
bool shared_data_available();

/// A fresh, empty temporary folder removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Copies a folder tree, making the copies writable (shared data is read-only).
void copy_tree(const std::filesystem::path& from, const std::filesystem::path& to);

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
  std::string stdout_text;
};
/// Runs the mlseg executable with `arguments` (shell-quoted by the caller).
CommandResult run_mlseg(const std::string& arguments);

}  // namespace mlseg::testing

/// Skips the current test with a clear message when ../shared/data is absent.
#define MLSEG_REQUIRE_SHARED_DATA()                                                              \
  do {                                                                                           \
    if (!::mlseg::testing::shared_data_available()) {                                           \
      GTEST_SKIP() << "real-data test skipped: " << ::mlseg::testing::shared_data_dir()          \
                   << " not found (set MLSEG_DATA to the shared data folder)";                  \
    }                                                                                            \
  } while (0)
