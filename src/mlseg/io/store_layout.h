#pragma once
// The preprocessed store (ARCHITECTURE.md "Key representations"): what `mlseg preprocess`
// writes and the data loader reads, in WORK/<dataset>/preprocessed/<config>/:
//
//   store.json            the store: configuration, channels, code layout, case list
//   CASE_img.npy          float32 [C, Z, Y, X]: transposed, cropped, normalised, resampled
//   CASE_seg.npy          channel codes [W, Z, Y, X] (uint8, or "<u2"/"<u4"/"<u8")
//   CASE_locations.npy    int32 [N, 3] (z, y, x) sampling locations, grouped; CASE.json's
//                         "locations" says which rows belong to which channel / combination
//   CASE.json             CaseProperties below
//
// Every axis is in the planned (transposed) order; original-geometry fields say so.
#include <array>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/core/geometry.h"

namespace mlseg {

inline constexpr const char* kStoreFile = "store.json";
inline constexpr const char* kImageSuffix = "_img.npy";
inline constexpr const char* kCodesSuffix = "_seg.npy";
inline constexpr const char* kLocationsSuffix = "_locations.npy";
inline constexpr const char* kStoreFormatVersion = "mlseg-store-1";
/// The cascade: a case's previous-stage prediction on the next stage's grid, as codes of the
/// previous stage's channels (`mlseg train -c 3d_cascade_fullres` writes them).
inline constexpr const char* kPriorSuffix = "_prior.npy";

std::filesystem::path store_image_file(const std::filesystem::path& store_dir, const std::string& case_id);
std::filesystem::path store_codes_file(const std::filesystem::path& store_dir, const std::string& case_id);
std::filesystem::path store_locations_file(const std::filesystem::path& store_dir, const std::string& case_id);
std::filesystem::path store_properties_file(const std::filesystem::path& store_dir, const std::string& case_id);
std::filesystem::path store_prior_file(const std::filesystem::path& prior_dir, const std::string& case_id);

/// WORK/<dataset>/preprocessed/<config>.
std::filesystem::path store_dir_for(const std::filesystem::path& dataset_work_dir, const std::string& configuration);

/// Rows [offset, offset + count) of CASE_locations.npy: voxels of one channel or one combination.
struct LocationGroup {
  std::string kind;                   ///< "channel" | "combination"
  std::string name;                   ///< channel name, or "a+b" for a combination
  int channel = -1;                   ///< kind == channel: its index
  std::vector<std::uint64_t> code_words;  ///< kind == combination: its code (one word per 64 bits)
  bool rare = false;                  ///< kind == combination: rare by analyze's thresholds
  std::int64_t voxels = 0;            ///< voxels of the channel / combination in the case
  std::int64_t offset = 0;
  std::int64_t count = 0;             ///< stored locations (nnU-Net: max(min(10000, n), ceil(0.01 n)))
};

/// What the rare-combination policy changed in one case.
struct RareCombinationChange {
  std::string combination;            ///< "a+b+c"
  std::vector<std::uint64_t> code_words;
  std::string action;                 ///< "ignored" | "merged"
  std::string merged_into;            ///< action == merged: the combination it became
  std::vector<std::uint64_t> merged_code_words;
  std::int64_t voxels = 0;
};

/// CASE.json.
struct CaseProperties {
  std::string case_id;
  // Before preprocessing, in the image's own zyx axes (not transposed).
  std::array<std::int64_t, 3> original_shape_zyx{};
  Geometry original_geometry;
  std::array<int, 3> transpose_forward{0, 1, 2};
  std::array<int, 3> transpose_backward{0, 1, 2};
  // Planned axes from here on.
  std::array<std::int64_t, 3> crop_begin{};  ///< crop box in the transposed original grid, begin inclusive
  std::array<std::int64_t, 3> crop_end{};    ///< end exclusive
  std::array<std::int64_t, 3> shape_after_crop{};
  std::array<double, 3> spacing_after_crop_mm{};  ///< = original spacing, transposed
  std::array<std::int64_t, 3> shape_after_resample{};
  std::array<double, 3> spacing_mm{};        ///< target spacing of the configuration
  int separate_axis = -1;                    ///< axis resampled with nearest (anisotropic data), -1: none
  std::vector<std::int64_t> channel_voxels;  ///< per label channel, after resampling (last: ignored voxels)
  std::vector<LocationGroup> locations;
  std::string rare_policy = "keep";
  std::vector<RareCombinationChange> rare_changes;
  std::string input_fingerprint;  ///< file sizes and times of the inputs + plan identity (resume check)
};

/// store.json: what every case of the store shares.
struct StoreInfo {
  std::string format = kStoreFormatVersion;
  std::string dataset;
  std::string configuration;             ///< 2d | 3d_fullres | 3d_lowres
  std::vector<std::string> image_channels;  ///< dataset.json channel_names
  int num_image_channels = 0;            ///< C of CASE_img.npy (an RGB file gives 3)
  std::vector<std::string> channel_names;   ///< label channels; bit c of a code = channel c
  int num_code_words = 1;                ///< W of CASE_seg.npy
  std::string code_descr;                ///< numpy dtype of CASE_seg.npy ("|u1", "<u2", "<u4", "<u8")
  std::string label_encoding;            ///< sigmoid | softmax (from plans.json)
  bool channels_overlap = false;
  bool has_ignore = false;               ///< some voxel may carry the ignore flag (bit = number of channels)
  std::array<double, 3> spacing_mm{};    ///< target spacing, planned axes (2d: z is the original's)
  std::vector<std::int64_t> patch_size;  ///< the configuration's patch (2 values for 2d)
  std::string rare_policy = "keep";      ///< keep | ignore | merge
  std::vector<std::string> cases;        ///< preprocessed case ids, sorted
};

nlohmann::ordered_json store_info_to_json(const StoreInfo& info);
StoreInfo store_info_from_json(const nlohmann::ordered_json& json, const std::string& source);

nlohmann::ordered_json case_properties_to_json(const CaseProperties& properties);
/// Throws mlseg::Error naming `source` and the key when something is missing or malformed.
CaseProperties case_properties_from_json(const nlohmann::ordered_json& json, const std::string& source);

}  // namespace mlseg
