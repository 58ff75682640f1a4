#include "mlseg/training/run_context.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "mlseg/core/error.h"

#if MLSEG_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if MLSEG_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace mlseg {

RankShare rank_batch_share(std::int64_t total, int world_size, int rank) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw Error("rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " does not exist", "check RANK and WORLD_SIZE");
  }
  if (total < world_size) {
    throw Error("the batch size " + std::to_string(total) + " is smaller than the " + std::to_string(world_size) + " ranks",
                "use at most " + std::to_string(total) + " ranks, or a larger batch_size in plans.json");
  }
  // nnU-Net: every rank gets total // world, the first total % world ranks one more.
  const std::int64_t base = total / world_size, extra = total % world_size;
  RankShare share;
  share.begin = rank * base + std::min<std::int64_t>(rank, extra);
  share.end = share.begin + base + (rank < extra ? 1 : 0);
  return share;
}

#if MLSEG_WITH_GLOO
namespace {
// A process that no longer runs: gone, or a zombie its parent has not reaped yet.
bool process_gone(pid_t pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}
}  // namespace

#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

struct RunContext::Group {
  LaunchEnvironment env;
  std::string backend_name;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<BackendBase> backend;
  std::chrono::milliseconds timeout{0}, setup_timeout{0};
  mutable std::int64_t setup_steps = 0;
  /// Where collective tensors must be: the CUDA device for NCCL, else the CPU.
  torch::Device tensor_device = torch::kCPU;

  /// `work` on `tensor` moved to tensor_device when it lives elsewhere, the result copied back.
  template <class Work>
  void on_backend_device(torch::Tensor& tensor, Work&& work) const {
    if (tensor.device() == tensor_device) {
      work(tensor);
      return;
    }
    torch::Tensor moved = tensor.to(tensor_device);
    work(moved);
    tensor.copy_(moved);
  }

  // Whatever the survivors can tell about who stopped: the messages ranks left in the store, and
  // the ranks on this host whose process is gone.
  std::string who_stopped() const {
    std::vector<std::string> found;
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    std::vector<std::pair<int, pid_t>> local_peers;  // ranks on this host that left no message
    for (int r = 0; r < env.world_size; ++r) {
      if (r == env.rank) continue;
      try {
        const std::string failed_key = "mlseg/failed/" + std::to_string(r);
        if (store->check({failed_key})) {
          const std::vector<std::uint8_t> message = store->get(failed_key);
          found.push_back("rank " + std::to_string(r) + " stopped: " + std::string(message.begin(), message.end()));
          continue;
        }
        const std::vector<std::uint8_t> where = store->get("mlseg/rank/" + std::to_string(r));
        std::istringstream in(std::string(where.begin(), where.end()));
        std::string rank_host;
        long pid = 0;
        in >> rank_host >> pid;
        if (rank_host == host && pid > 0) local_peers.emplace_back(r, static_cast<pid_t>(pid));
      } catch (const std::exception&) {
        if (r == 0) found.push_back("rank 0 (which holds the rendezvous store) is unreachable");
        break;  // the store is gone with rank 0
      }
    }
    // A killed peer's sockets close a moment before the kernel lists it as gone: look for a while.
    constexpr int kGoneChecks = 40, kGoneCheckMs = 50;
    for (int check = 0; check < kGoneChecks && !local_peers.empty(); ++check) {
      bool any_gone = false;
      for (const auto& [rank, pid] : local_peers) {
        if (process_gone(pid)) {
          found.push_back("rank " + std::to_string(rank) + " (pid " + std::to_string(pid) + ") is gone");
          any_gone = true;
        }
      }
      if (any_gone) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(kGoneCheckMs));
    }
    if (found.empty()) return "another rank stopped, hung or cannot be reached (no answer within --dist-timeout-s)";
    std::string out;
    for (const std::string& line : found) out += (out.empty() ? "" : "; ") + line;
    return out;
  }

  Error failure(const std::string& what, const std::exception& error) const {
    std::string detail = error_message(error);
    if (const auto newline = detail.find('\n'); newline != std::string::npos) detail.resize(newline);
    return Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": the process group failed during " +
                     what + " (" + detail + "): " + who_stopped(),
                 "see the first failed rank's own message; after fixing it, rerun with --resume to continue from "
                 "checkpoint_latest");
  }

  template <class Work>
  void run(const std::string& what, Work&& work) const {
    try {
      work();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& error) {
      throw failure(what, error);
    }
  }
};

namespace {

std::shared_ptr<RunContext::Group> join_group(const LaunchEnvironment& env, const torch::Device& device,
                                              const DistributedOptions& options) {
  auto group = std::make_shared<RunContext::Group>();
  group->env = env;
  group->timeout = std::chrono::milliseconds(static_cast<std::int64_t>(options.collective_timeout_seconds * 1000));
  group->setup_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(options.setup_timeout_seconds * 1000));
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = group->timeout;
    group->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
  } catch (const std::exception& error) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                    " could not join the rendezvous at " + where + ": " + error_message(error),
                env.rank == 0 ? "pick a free MASTER_PORT (another run may hold this one)"
                              : "start rank 0 (MASTER_ADDR/MASTER_PORT must name its host and a port it can open) within "
                                "--dist-timeout-s");
  }
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  const std::string self = std::string(host) + " " + std::to_string(getpid());
  group->store->set("mlseg/rank/" + std::to_string(env.rank), std::vector<std::uint8_t>(self.begin(), self.end()));
  try {
#if MLSEG_WITH_NCCL
    if (device.is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = group->timeout;
      group->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, env.rank, env.world_size, nccl_options);
      group->backend_name = "nccl";
      group->tensor_device = device;
      return group;
    }
#endif
    (void)device;  // Gloo all-reduces CPU and CUDA tensors alike
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(group->timeout);
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    const bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
    if (interface != nullptr && *interface != '\0') {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else if (loopback) {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    gloo_options->threads = 2;
    group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, env.rank, env.world_size, gloo_options);
    group->backend_name = "gloo";
  } catch (const std::exception& error) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " could not form the process group via " +
                    where + ": " + error_message(error),
                "check that every rank can reach the others (GLOO_SOCKET_IFNAME names the network interface to use)");
  }
  return group;
}

struct SumAcrossRanks : public torch::autograd::Function<SumAcrossRanks> {
  // The context travels as an integer: autograd's saved data holds IValues, and the RunContext
  // outlives every backward of its run.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input, std::int64_t run_context) {
    ctx->saved_data["run"] = run_context;
    torch::Tensor sum = input.clone();
    reinterpret_cast<const RunContext*>(run_context)->all_reduce_sum(sum, "batch Dice sum across ranks");
    return sum;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    torch::Tensor grad = grads[0].clone();
    reinterpret_cast<const RunContext*>(ctx->saved_data["run"].toInt())->all_reduce_sum(grad, "batch Dice gradient across ranks");
    return {grad, torch::Tensor()};
  }
};

}  // namespace

bool distributed_training_available() { return true; }

RunContext RunContext::join(const LaunchEnvironment& env, const torch::Device& device, const DistributedOptions& options) {
  RunContext context;
  context.env_ = env;
  if (env.distributed()) context.group_ = join_group(env, device, options);
  return context;
}

void RunContext::all_reduce_sum(torch::Tensor& tensor, const std::string& what) const {
  if (!group_) return;
  group_->run(what, [&] {
    group_->on_backend_device(tensor, [&](torch::Tensor& t) {
      std::vector<torch::Tensor> tensors{t};
      group_->backend->allreduce(tensors)->wait();
    });
  });
}

void RunContext::broadcast_from_main(torch::Tensor& tensor, const std::string& what) const {
  if (!group_) return;
  group_->run(what, [&] {
    group_->on_backend_device(tensor, [&](torch::Tensor& t) {
      std::vector<torch::Tensor> tensors{t};
      group_->backend->broadcast(tensors)->wait();
    });
  });
}

void RunContext::broadcast_tensors(const std::vector<torch::Tensor>& tensors, const std::string& what) const {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& t : tensors) {
    torch::Tensor contiguous = t.contiguous();
    broadcast_from_main(contiguous, what);
    if (!contiguous.is_same(t)) t.copy_(contiguous);
  }
}

void RunContext::barrier(const std::string& what) const {
  if (!group_) return;
  group_->run(what, [&] { group_->backend->barrier()->wait(); });
}

void RunContext::main_first(const std::string& what, const std::function<void()>& work) const {
  if (!group_) {
    work();
    return;
  }
  const std::string key = "mlseg/setup/" + std::to_string(group_->setup_steps++);
  if (is_main()) {
    std::string outcome = "ok";
    try {
      work();
    } catch (const Error& error) {
      outcome = "error\n" + error.problem() + "\n" + error.fix();
      group_->store->set(key, std::vector<std::uint8_t>(outcome.begin(), outcome.end()));
      throw;
    }
    group_->run(what, [&] { group_->store->set(key, std::vector<std::uint8_t>(outcome.begin(), outcome.end())); });
    return;
  }
  std::string outcome;
  group_->run(what + " (waiting for rank 0)", [&] {
    group_->store->wait({key}, group_->setup_timeout);
    const std::vector<std::uint8_t> value = group_->store->get(key);
    outcome.assign(value.begin(), value.end());
  });
  if (outcome.rfind("error\n", 0) == 0) {
    const std::string rest = outcome.substr(6);
    const auto newline = rest.find('\n');
    throw Error("rank 0 failed during " + what + ": " + rest.substr(0, newline),
                newline == std::string::npos ? std::string() : rest.substr(newline + 1));
  }
}

void RunContext::average_gradients(const std::vector<torch::Tensor>& parameters, torch::Tensor& loss) const {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> gradients;
  for (const torch::Tensor& p : parameters) {
    torch::Tensor& grad = const_cast<torch::Tensor&>(p).mutable_grad();
    if (!grad.defined()) grad = torch::zeros_like(p);
    gradients.push_back(grad);
  }
  if (gradients.empty()) {
    torch::Tensor sum = loss.detach().reshape({1}).clone();
    all_reduce_sum(sum, "the loss all-reduce");
    loss = (sum / static_cast<double>(env_.world_size)).reshape({}).to(loss.scalar_type());
    return;
  }
  // Flat buckets in parameter order, the loss riding in the last one.
  std::vector<std::vector<std::size_t>> buckets(1);
  std::int64_t bucket_bytes = 0;
  for (std::size_t i = 0; i < gradients.size(); ++i) {
    const std::int64_t bytes = gradients[i].numel() * static_cast<std::int64_t>(gradients[i].element_size());
    if (!buckets.back().empty() && bucket_bytes + bytes > kGradientBucketBytes) {
      buckets.emplace_back();
      bucket_bytes = 0;
    }
    buckets.back().push_back(i);
    bucket_bytes += bytes;
  }
  std::vector<torch::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  group_->run("the gradient all-reduce", [&] {
    for (std::size_t b = 0; b < buckets.size(); ++b) {
      std::vector<torch::Tensor> pieces;
      const auto dtype = gradients.front().scalar_type();
      for (std::size_t i : buckets[b]) pieces.push_back(gradients[i].reshape({-1}).to(dtype));
      if (b + 1 == buckets.size()) pieces.push_back(loss.detach().reshape({1}).to(gradients.front().device(), dtype));
      flats.push_back(torch::cat(pieces));
      std::vector<torch::Tensor> one{flats.back()};
      works.push_back(group_->backend->allreduce(one));
    }
    for (auto& work : works) work->wait();
  });
  const double inverse_world = 1.0 / static_cast<double>(env_.world_size);
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    flats[b].mul_(inverse_world);
    std::int64_t offset = 0;
    for (std::size_t i : buckets[b]) {
      const std::int64_t n = gradients[i].numel();
      gradients[i].copy_(flats[b].narrow(0, offset, n).view_as(gradients[i]));
      offset += n;
    }
    if (b + 1 == buckets.size()) loss = flats[b].narrow(0, offset, 1).reshape({}).to(loss.scalar_type());
  }
}

torch::Tensor RunContext::sum_across_ranks_with_grad(const torch::Tensor& tensor) const {
  if (!group_) return tensor;
  return SumAcrossRanks::apply(tensor, reinterpret_cast<std::int64_t>(this));
}

void RunContext::report_failure(const std::string& message) const noexcept {
  if (!group_) return;
  try {
    group_->store->set("mlseg/failed/" + std::to_string(env_.rank), std::vector<std::uint8_t>(message.begin(), message.end()));
  } catch (...) {
  }
}

#else  // built without a c10d backend

struct RunContext::Group {};

bool distributed_training_available() { return false; }

RunContext RunContext::join(const LaunchEnvironment& env, const torch::Device&, const DistributedOptions&) {
  if (env.distributed()) {
    throw Error("a " + std::to_string(env.world_size) + "-process run, but this mlseg was built without c10d's Gloo backend",
                "install libgloo-dev (scripts/install-deps.sh does) and rebuild, or run one process");
  }
  RunContext context;
  context.env_ = env;
  return context;
}
void RunContext::all_reduce_sum(torch::Tensor&, const std::string&) const {}
void RunContext::broadcast_from_main(torch::Tensor&, const std::string&) const {}
void RunContext::broadcast_tensors(const std::vector<torch::Tensor>&, const std::string&) const {}
void RunContext::barrier(const std::string&) const {}
void RunContext::main_first(const std::string&, const std::function<void()>& work) const { work(); }
void RunContext::average_gradients(const std::vector<torch::Tensor>&, torch::Tensor&) const {}
torch::Tensor RunContext::sum_across_ranks_with_grad(const torch::Tensor& tensor) const { return tensor; }
void RunContext::report_failure(const std::string&) const noexcept {}
#endif

RunContext::RunContext() = default;

RunContext RunContext::from_environment(const torch::Device& device, const DistributedOptions& options) {
  return join(launch_environment(), device, options);
}

const std::string& RunContext::backend() const {
  static const std::string none = "none";
#if MLSEG_WITH_GLOO
  if (group_) return group_->backend_name;
#endif
  return none;
}

std::string RunContext::describe() const {
  return "rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) + " (" + backend() + ")";
}

bool RunContext::main_decides(bool decision, const std::string& what) const {
  if (!distributed()) return decision;
  torch::Tensor flag = torch::full({1}, decision ? 1 : 0, torch::kInt64);
  broadcast_from_main(flag, what);
  return flag.item<std::int64_t>() != 0;
}

bool RunContext::any(bool flag, const std::string& what) const {
  if (!distributed()) return flag;
  torch::Tensor count = torch::full({1}, flag ? 1 : 0, torch::kInt64);
  all_reduce_sum(count, what);
  return count.item<std::int64_t>() > 0;
}

}  // namespace mlseg
