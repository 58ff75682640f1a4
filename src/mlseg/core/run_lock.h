#pragma once
// One writer per folder: `mlseg train` holds its fold folder, `mlseg preprocess` the store it
// writes. The lock is an advisory flock(2) on a small file that also records the holder (pid,
// host, start time, command), so a second run is refused with a message naming it. The kernel
// drops the lock when its process ends, however it ends (SIGKILL included): a stale lock file
// from a killed run is simply taken over. flock works across hosts on NFS v4 and Lustre, where
// work folders of clusters live.
#include <filesystem>
#include <string>

namespace mlseg {

class RunLock {
 public:
  /// Takes the lock on `lock_file` (created, with its folder, when missing) for `what` (e.g.
  /// "training fold_0"). Throws mlseg::Error naming the holder when another process holds it.
  RunLock(std::filesystem::path lock_file, std::string what);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// True when the lock file was left by a run that ended without releasing it (killed): its
  /// holder record was taken over.
  bool took_over_stale() const { return took_over_stale_; }
  /// The record of the previous holder when took_over_stale().
  const std::string& previous_holder() const { return previous_holder_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool took_over_stale_ = false;
  std::string previous_holder_;
};

/// "pid 1234 on host node7, started 2026-12-05 00:31:02 UTC: mlseg train ..." for this process.
std::string describe_this_process(const std::string& what);

}  // namespace mlseg
