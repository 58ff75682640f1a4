#pragma once
// The parity suite's side of the bridge to nnU-Net v2: run a peer script (tests/parity/peer/*.py,
// Debian's /usr/bin/python3 with python3-torch and ../shared/peers on the path), read what it
// wrote, and compare tensors with a tolerance that names the nnU-Net function in every failure.
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mlseg::parity {

/// ../shared/peers (or $MLSEG_PEERS_DIR).
std::filesystem::path peers_dir();
/// $MLSEG_PEER_PYTHON, else /usr/bin/python3 (Debian's, which has python3-torch; a pyenv
/// `python3` on PATH usually has no torch).
std::string peer_python();
/// Why the peer cannot run here (no python3-torch, no ../shared/peers), or nothing when it can.
/// Checked once per process.
std::optional<std::string> peer_unavailable();

struct PeerOutput {
  std::filesystem::path folder;
  nlohmann::json meta;  ///< the script's meta.json
  torch::Tensor array(const std::string& name) const;  ///< folder/name.npy
};

/// Runs `script` (a file in tests/parity/peer) with `arguments`; the script writes into `out`,
/// which is created. Throws std::runtime_error with the script's output when it fails.
PeerOutput run_peer(const std::string& script, const std::vector<std::string>& arguments, const std::filesystem::path& out);

/// max |actual − expected| / max(max |expected|, floor): the relative error of a whole tensor.
double relative_error(const torch::Tensor& actual, const torch::Tensor& expected, double floor = 1e-12);

/// A dataset folder `to` holding `cases` of the raw dataset `source` (symbolic links to its images
/// and labels), with dataset.json copied and its numTraining adjusted. Returns `to`.
std::filesystem::path link_dataset_subset(const std::filesystem::path& source, const std::vector<std::string>& cases,
                                          const std::filesystem::path& to);

/// The peer scripts' case arguments for raw cases of `dataset`: CASE=LABEL_FILE=IMAGE_FILE[,IMAGE_FILE...]
/// per case, images in channel order (_0000, _0001, ...).
std::vector<std::string> raw_case_arguments(const std::filesystem::path& dataset, const std::vector<std::string>& cases);

/// Writes a JSON document to a file, keys in their order (dataset.json's label order is the channel order).
void write_json(const std::filesystem::path& path, const nlohmann::ordered_json& json);

}  // namespace mlseg::parity

/// Skips the current test with the reason when nnU-Net cannot run here.
#define MLSEG_REQUIRE_PEER()                                                                          \
  do {                                                                                                \
    if (const auto why = ::mlseg::parity::peer_unavailable()) GTEST_SKIP() << "parity skipped: " << *why; \
  } while (0)
