#include "test_support.h"
#include "run_executable.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mlseg::testing {
namespace fs = std::filesystem;

fs::path shared_data_dir() {
  if (const char* env = std::getenv("MLSEG_DATA")) return env;
  return MLSEG_SHARED_DATA_DIR;
}

bool shared_data_available() { return fs::is_directory(shared_data_dir() / "Dataset004_Hippocampus"); }

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = fs::temp_directory_path() /
          ("mlseg_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& entry : fs::recursive_directory_iterator(from)) {
    const fs::path target = to / fs::relative(entry.path(), from);
    if (entry.is_directory()) {
      fs::create_directories(target);
    } else {
      fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing);
      fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
    }
  }
  fs::permissions(to, fs::perms::owner_all, fs::perm_options::add);
}

CommandResult run_executable(const fs::path& executable, const std::string& arguments) {
  static std::atomic<int> counter{0};
  const fs::path out_file = fs::temp_directory_path() /
                            ("mlseg_cli_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  const std::string command = "'" + executable.string() + "' " + arguments + " > '" +
                              out_file.string() + ".out' 2> '" + out_file.string() + ".err'";
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const fs::path& path) {
    std::ifstream stream(path);
    std::stringstream buffer;
    buffer << stream.rdbuf();
    return buffer.str();
  };
  result.stdout_text = slurp(out_file.string() + ".out");
  result.output = result.stdout_text + slurp(out_file.string() + ".err");
  fs::remove(out_file.string() + ".out");
  fs::remove(out_file.string() + ".err");
  return result;
}

CommandResult run_mlseg(const std::string& arguments) { return run_executable(MLSEG_EXECUTABLE, arguments); }

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace mlseg::testing
