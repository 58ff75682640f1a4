#include "parity/parity_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"

namespace fs = std::filesystem;

namespace mlseg::parity {
namespace {

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Shell {
  int exit_code = -1;
  std::string output;
};

Shell shell(const std::string& command, const fs::path& log) {
  const int status = std::system((command + " > " + quoted(log.string()) + " 2>&1").c_str());
  Shell result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream stream(log);
  std::stringstream buffer;
  buffer << stream.rdbuf();
  result.output = buffer.str();
  return result;
}

std::string environment(const fs::path& work) {
  return "MLSEG_PEERS_DIR=" + quoted(peers_dir().string()) + " PEERS_WORK=" + quoted(work.string()) +
         " PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=2 ";
}

}  // namespace

fs::path peers_dir() {
  if (const char* env = std::getenv("MLSEG_PEERS_DIR"); env != nullptr && *env != 0) return env;
  return MLSEG_SHARED_PEERS_DIR;
}

std::string peer_python() {
  if (const char* env = std::getenv("MLSEG_PEER_PYTHON"); env != nullptr && *env != 0) return env;
  return "/usr/bin/python3";
}

std::optional<std::string> peer_unavailable() {
  static const std::optional<std::string> reason = []() -> std::optional<std::string> {
    if (!fs::exists(peers_dir() / "vendor" / "nnunetv2")) {
      return "nnU-Net's source not found at " + (peers_dir() / "vendor" / "nnunetv2").string() +
             " (set MLSEG_PEERS_DIR to the shared peers folder)";
    }
    if (!fs::exists(peer_python())) return peer_python() + " not found (set MLSEG_PEER_PYTHON, or run scripts/install-deps.sh)";
    const fs::path log = fs::temp_directory_path() / ("mlseg_peer_probe_" + std::to_string(::getpid()));
    const Shell probe = shell(quoted(peer_python()) + " -c 'import torch, numpy, scipy, nibabel'", log);
    fs::remove(log);
    if (probe.exit_code != 0) {
      return peer_python() + " cannot import torch, numpy, scipy and nibabel (install python3-torch python3-scipy "
             "python3-nibabel: scripts/install-deps.sh): " + probe.output.substr(0, 300);
    }
    return std::nullopt;
  }();
  return reason;
}

torch::Tensor PeerOutput::array(const std::string& name) const { return read_npy(folder / (name + ".npy")); }

PeerOutput run_peer(const std::string& script, const std::vector<std::string>& arguments, const fs::path& out) {
  fs::create_directories(out);
  std::string command = environment(out / "peers_work") + quoted(peer_python()) + " " +
                        quoted((fs::path(MLSEG_PARITY_PEER_SCRIPTS) / script).string());
  for (const auto& a : arguments) command += " " + quoted(a);
  const Shell run = shell(command, out / "peer.log");
  if (run.exit_code != 0) {
    throw std::runtime_error("peer script " + script + " failed (exit " + std::to_string(run.exit_code) + "):\n" + run.output);
  }
  PeerOutput result;
  result.folder = out;
  std::ifstream meta(out / "meta.json");
  if (!meta) throw std::runtime_error("peer script " + script + " wrote no meta.json in " + out.string() + ":\n" + run.output);
  result.meta = nlohmann::json::parse(meta);
  return result;
}

double relative_error(const torch::Tensor& actual, const torch::Tensor& expected, double floor) {
  if (actual.sizes() != expected.sizes()) {
    std::ostringstream what;
    what << "shape " << actual.sizes() << " vs nnU-Net's " << expected.sizes();
    throw std::runtime_error(what.str());
  }
  const auto a = actual.to(torch::kFloat64), e = expected.to(torch::kFloat64);
  const double scale = std::max(e.abs().max().item<double>(), floor);
  return (a - e).abs().max().item<double>() / scale;
}

fs::path link_dataset_subset(const fs::path& source, const std::vector<std::string>& cases, const fs::path& to) {
  fs::create_directories(to / "imagesTr");
  fs::create_directories(to / "labelsTr");
  for (const auto& entry : fs::directory_iterator(source / "imagesTr")) {
    const std::string name = entry.path().filename().string();
    for (const auto& c : cases) {  // CASE_XXXX.nii.gz
      if (name.rfind(c + "_", 0) == 0 && name.size() == c.size() + 12) fs::create_symlink(entry.path(), to / "imagesTr" / name);
    }
  }
  for (const auto& c : cases) fs::create_symlink(source / "labelsTr" / (c + ".nii.gz"), to / "labelsTr" / (c + ".nii.gz"));
  auto json = read_json_file(source / "dataset.json");
  json["numTraining"] = cases.size();
  write_json(to / "dataset.json", json);
  return to;
}

std::vector<std::string> raw_case_arguments(const fs::path& dataset, const std::vector<std::string>& cases) {
  std::vector<std::string> arguments;
  for (const auto& c : cases) {
    std::vector<std::string> files;  // channel order: _0000, _0001, ...
    for (const auto& entry : fs::directory_iterator(dataset / "imagesTr")) {
      if (entry.path().filename().string().rfind(c + "_", 0) == 0) files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    std::string images;
    for (const auto& f : files) images += (images.empty() ? "" : ",") + f;
    arguments.push_back(c + "=" + (dataset / "labelsTr" / (c + ".nii.gz")).string() + "=" + images);
  }
  return arguments;
}

void write_json(const fs::path& path, const nlohmann::ordered_json& json) {
  std::ofstream stream(path);
  stream << json.dump(1);
}

}  // namespace mlseg::parity
