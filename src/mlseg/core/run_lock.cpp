#include "mlseg/core/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "mlseg/core/error.h"
#include "mlseg/core/rank_launcher.h"

namespace mlseg {
namespace {

std::string read_all(int fd) {
  std::string text;
  char buffer[512];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n = 0; (n = read(fd, buffer, sizeof(buffer))) > 0 && text.size() < 4096;) text.append(buffer, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

}  // namespace

std::string describe_this_process(const std::string& what) {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::string command = "mlseg";
  for (const std::string& argument : remembered_arguments()) command += " " + argument;
  if (command.size() > 300) command = command.substr(0, 297) + "...";
  return what + " by pid " + std::to_string(getpid()) + " on host " + host + ", started " + utc_now() + ": " + command;
}

RunLock::RunLock(std::filesystem::path lock_file, std::string what) : path_(std::move(lock_file)) {
  std::error_code ec;
  if (!path_.parent_path().empty()) std::filesystem::create_directories(path_.parent_path(), ec);
  fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw Error("cannot open the lock file (" + std::string(std::strerror(errno)) + ")", "check write permission on the folder",
                {path_.string(), "", ""});
  }
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = read_all(fd_);
    close(fd_);
    fd_ = -1;
    throw Error("another run is " + (holder.empty() ? what + " here" : holder),
                "wait for it to finish or stop it; two runs writing the same folder would overwrite each other's files",
                {path_.string(), "", ""});
  }
  previous_holder_ = read_all(fd_);
  took_over_stale_ = !previous_holder_.empty();
  const std::string record = describe_this_process(what) + "\n";
  if (ftruncate(fd_, 0) == 0) {
    lseek(fd_, 0, SEEK_SET);
    ssize_t written = write(fd_, record.data(), record.size());
    (void)written;  // the record is for messages only; the lock itself is the flock
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Emptied before release: a non-empty record on a free lock means its holder was killed.
  if (ftruncate(fd_, 0) != 0) {
  }
  flock(fd_, LOCK_UN);
  close(fd_);
}

}  // namespace mlseg
