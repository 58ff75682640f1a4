#pragma once
// PreprocessedStore: reads what `mlseg preprocess` wrote (io/store_layout.h) for training.
//
// Opening a store reads only store.json. A case is opened on first use (thread-safe): its
// CASE.json and locations are read, its image and codes memory-mapped and checked against
// CASE.json and store.json. Patches are cut straight from the mappings, row by row, so a patch
// costs its own size, not the case's.
#include <torch/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mlseg/io/store_layout.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

class NpyMapping;

/// One opened case: properties, sampling locations and views of the mapped arrays.
class StoredCase {
 public:
  const std::string& case_id() const { return properties_.case_id; }
  const CaseProperties& properties() const { return properties_; }
  /// Shape of the stored arrays (planned axes).
  const std::array<std::int64_t, 3>& shape_zyx() const { return shape_zyx_; }
  /// Location row `row` of CASE_locations.npy as (z, y, x).
  std::array<std::int64_t, 3> location(std::int64_t row) const;
  std::int64_t num_locations() const { return static_cast<std::int64_t>(locations_.size() / 3); }
  /// [C, Z, Y, X] float32 view of the mapped image (no copy; read-only pages).
  torch::Tensor image() const;
  /// [W, Z, Y, X] view of the mapped codes (no copy; read-only pages).
  CodeVolume codes() const;
  /// What the network takes: image() with, in a cascade store, the previous stage's channels
  /// appended as float32 0/1 ([C + K, Z, Y, X]; a copy then, else the view).
  torch::Tensor network_input() const;
  /// Code word `word` of voxel (z, y, x); the voxel must be inside the case.
  std::uint64_t code_word_at(int word, const std::array<std::int64_t, 3>& zyx) const;
  /// Whether the voxel carries the ignore flag (bit num_channels).
  bool is_ignored(const std::array<std::int64_t, 3>& zyx) const;

 private:
  friend class PreprocessedStore;
  CaseProperties properties_;
  std::array<std::int64_t, 3> shape_zyx_{};
  std::vector<std::int32_t> locations_;  ///< N x 3, row-major
  std::shared_ptr<NpyMapping> image_;
  std::shared_ptr<NpyMapping> codes_;
  std::shared_ptr<NpyMapping> prior_;  ///< cascade: the previous stage's codes
  int prior_channels_ = 0;
  int num_image_channels_ = 0;
  int num_channels_ = 0;
  int num_code_words_ = 1;
  std::size_t code_item_size_ = 1;
};

/// A patch cut from a case: image [C, z, y, x] float32 (C = num_input_channels()) and codes [W, z, y, x]. Voxels outside
/// the case are image 0 and code 0 (background), as nnU-Net pads.
struct CutPatch {
  torch::Tensor image;
  CodeVolume codes;
};

class PreprocessedStore {
 public:
  /// Reads `store_dir`/store.json. Throws mlseg::Error naming the folder when it is missing or
  /// malformed (fix: run `mlseg preprocess DATASET -c CONFIG`).
  explicit PreprocessedStore(std::filesystem::path store_dir);
  ~PreprocessedStore();
  PreprocessedStore(const PreprocessedStore&) = delete;
  PreprocessedStore& operator=(const PreprocessedStore&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  const StoreInfo& info() const { return info_; }
  std::size_t num_cases() const { return info_.cases.size(); }
  const std::vector<std::string>& case_ids() const { return info_.cases; }
  int num_channels() const { return static_cast<int>(info_.channel_names.size()); }
  /// The network's input channels: the image's, plus the previous stage's in a cascade.
  int num_input_channels() const { return info_.num_image_channels + prior_channels_; }
  int prior_channels() const { return prior_channels_; }

  /// The cascade: every case's previous-stage prediction (store_prior_file(prior_dir, case):
  /// codes of `prior_channels` channels on the case's grid) is appended to the image as
  /// `prior_channels` float32 0/1 channels by every cut and by StoredCase::network_input(), so that
  /// sampling, augmentation and validation see the cascade's input. Not thread-safe: call before
  /// the store is shared (cases opened so far are dropped and reopened on next use); a missing or
  /// mismatched file is reported when its case opens.
  void attach_previous_stage(std::filesystem::path prior_dir, int prior_channels);
  /// Index of `case_id` in case_ids(); throws mlseg::Error when the store has no such case.
  std::size_t case_index(const std::string& case_id) const;

  /// The case, opened and checked on first use (safe from any thread). Throws mlseg::Error
  /// naming the file and the case when its files are missing, truncated or inconsistent.
  const StoredCase& stored_case(std::size_t case_index) const;

  /// Cuts [begin, begin + size) of case `case_index`; the box may extend past the case on any
  /// side (padded with image 0 / code 0).
  CutPatch cut_patch(std::size_t case_index, const std::array<std::int64_t, 3>& begin_zyx,
                     const std::array<std::int64_t, 3>& size_zyx) const;
  /// The same into caller-owned contiguous tensors (e.g. slices of a batch, saving a copy):
  /// `image` [C, z, y, x] float32 and `codes` [W, z, y, x] of the store's code type.
  void cut_patch_into(std::size_t case_index, const std::array<std::int64_t, 3>& begin_zyx, torch::Tensor& image,
                      torch::Tensor& codes) const;
  /// The same into `patch`, reusing its tensors' memory when they are large enough (a loader
  /// thread's buffer: no fresh pages per sample); allocates them on first use.
  void cut_patch_into(std::size_t case_index, const std::array<std::int64_t, 3>& begin_zyx,
                      const std::array<std::int64_t, 3>& size_zyx, CutPatch& patch) const;

 private:
  struct Slot {
    std::mutex mutex;
    std::atomic<const StoredCase*> opened{nullptr};
    std::unique_ptr<StoredCase> owned;
  };
  std::unique_ptr<StoredCase> open_case(std::size_t case_index) const;

  std::filesystem::path dir_;
  std::filesystem::path prior_dir_;
  int prior_channels_ = 0;
  StoreInfo info_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace mlseg
