#include "mlseg/core/rank_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "mlseg/core/error.h"
#include "mlseg/core/launch_environment.h"

namespace mlseg {
namespace {

std::vector<std::string>& command_line_storage() {
  static std::vector<std::string> arguments;
  return arguments;
}

volatile sig_atomic_t g_stop_signal = 0;
void remember_stop_signal(int signal) { g_stop_signal = signal; }

// A TCP port that is free now on the loopback interface (the kernel's pick).
int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return kDefaultMasterPort;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = kDefaultMasterPort;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

// In the forked child: torchrun's variables for `rank`, then this executable again. Never returns.
[[noreturn]] void exec_rank(const LocalLaunchOptions& options, int rank, const std::string& port) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(options.processes).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(options.processes).c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", port.c_str(), 1);
  std::vector<std::string> arguments = options.arguments;
  std::string program = "mlseg";
  std::vector<char*> argv{program.data()};
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  execv(options.executable.c_str(), argv.data());
  std::fprintf(stderr, "mlseg: error: rank %d could not start %s (%s)\n", rank, options.executable.c_str(), std::strerror(errno));
  _exit(127);
}

}  // namespace

void remember_command_line(int argc, char** argv) {
  std::vector<std::string>& arguments = command_line_storage();
  arguments.assign(argv + (argc > 0 ? 1 : 0), argv + argc);
}

const std::vector<std::string>& remembered_arguments() { return command_line_storage(); }

std::vector<std::string> remembered_arguments_without(const std::string& option) {
  std::vector<std::string> out;
  const std::vector<std::string>& arguments = command_line_storage();
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    if (arguments[i] == option) {
      ++i;  // its value
      continue;
    }
    if (arguments[i].rfind(option + "=", 0) == 0) continue;
    out.push_back(arguments[i]);
  }
  return out;
}

std::string process_label() {
  try {
    const LaunchEnvironment env = launch_environment();
    if (env.distributed()) return "mlseg (rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ")";
  } catch (const Error&) {
  }
  return "mlseg";
}

int launch_local_ranks(const LocalLaunchOptions& options) {
  if (options.processes < 1) throw Error("--nproc-per-node is " + std::to_string(options.processes), "pass 1 or more");
  const char* port_override = std::getenv("MASTER_PORT");
  const std::string port = port_override != nullptr && *port_override != '\0' ? port_override : std::to_string(free_loopback_port());
  std::printf("launching %d ranks on this machine (MASTER_ADDR=127.0.0.1 MASTER_PORT=%s); rank 0 reports\n", options.processes,
              port.c_str());
  std::fflush(stdout);
  std::vector<pid_t> pids(static_cast<std::size_t>(options.processes), -1);
  struct sigaction stop {};
  stop.sa_handler = remember_stop_signal;
  sigemptyset(&stop.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &stop, &old_int);
  sigaction(SIGTERM, &stop, &old_term);
  for (int rank = 0; rank < options.processes; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) {
      for (pid_t started : pids) {
        if (started > 0) kill(started, SIGTERM);
      }
      throw Error(std::string("cannot start rank ") + std::to_string(rank) + ": fork failed (" + std::strerror(errno) + ")",
                  "free memory or processes and retry");
    }
    if (pid == 0) {
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      exec_rank(options, rank, port);
    }
    pids[static_cast<std::size_t>(rank)] = pid;
  }

  using Clock = std::chrono::steady_clock;
  int running = options.processes;
  int result = 0;
  bool terminated = false, killed = false, killed_rank_seen = false;
  std::optional<Clock::time_point> deadline;
  while (running > 0) {
    int status = 0;
    const pid_t done = waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      int rank = 0;
      while (rank < options.processes && pids[static_cast<std::size_t>(rank)] != done) ++rank;
      if (rank == options.processes) continue;
      pids[static_cast<std::size_t>(rank)] = -1;
      --running;
      if (exit_code_of(status) != 0 && !terminated) {
        std::fprintf(stderr, "mlseg: rank %d (pid %d) %s\n", rank, static_cast<int>(done), describe_exit(status).c_str());
        // A rank killed by a signal is the cause, the others' errors its consequence: its code
        // wins whichever of them the kernel hands back first.
        if (WIFSIGNALED(status) && !killed_rank_seen) {
          killed_rank_seen = true;
          result = exit_code_of(status);
        }
        if (result == 0) {
          result = exit_code_of(status);
          deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                        options.collective_timeout_seconds + kLauncherGraceSeconds));
          if (running > 0) {
            std::fprintf(stderr, "mlseg: the other ranks stop when they notice (at most --dist-timeout-s %.0f s)\n",
                         options.collective_timeout_seconds);
          }
        }
      }
      continue;
    }
    if (done < 0 && errno != EINTR) break;
    if (g_stop_signal != 0 && !terminated) {
      for (pid_t pid : pids) {
        if (pid > 0) kill(pid, g_stop_signal);
      }
      terminated = true;
      if (result == 0) result = 128 + g_stop_signal;
      deadline = Clock::now() + std::chrono::seconds(static_cast<int>(kLauncherGraceSeconds));
    }
    if (deadline && Clock::now() > *deadline) {
      const int sig = terminated ? SIGKILL : SIGTERM;
      if (!killed) {
        for (pid_t pid : pids) {
          if (pid > 0) kill(pid, sig);
        }
      }
      killed = sig == SIGKILL;
      terminated = true;
      deadline = Clock::now() + std::chrono::seconds(5);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace mlseg
