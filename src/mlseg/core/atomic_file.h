#pragma once
// Nothing half-written: outputs are written to a temporary name in the target folder and
// renamed into place only when complete.
#include <filesystem>
#include <string>

namespace mlseg {

/// A temporary path next to `target` that keeps target's full extension (".nii.gz"), so that
/// writers choosing a format by extension still work. commit() renames it onto `target`; if
/// the object dies uncommitted, the temporary file is removed.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::filesystem::path target);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& target() const { return target_; }
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

/// Writes `contents` to `path` atomically (creating parent folders).
void write_text_file_atomically(const std::filesystem::path& path, const std::string& contents);

/// Removes the temporary files AtomicOutput leaves in `folder` when its process is killed before
/// commit (".NAME.tmp-PID-N.EXT"); call it only while holding the folder (RunLock). Returns how
/// many were removed.
int remove_stale_temporaries(const std::filesystem::path& folder);

/// Full extension of a file name: ".nii.gz" for "a.nii.gz", ".png" for "x.png".
std::string full_extension(const std::filesystem::path& path);

}  // namespace mlseg
