#pragma once
// Synthetic phantom datasets: seeded, deterministic, with overlapping label channels.
//
// Channels cycle through structure kinds that exercise every multi-label situation:
//   body (large, always present) ⊃ organ ⊃ lesion (nested; lesion absent in every 5th case),
//   vessel (a tube that only partly overlaps organ and body), cyst (inside body, disjoint from
//   organ), rare (present in 1 case out of `rare_every`; the cyst's twin in size and contrast
//   magnitude, so that apart from place and sign the two differ only in how often they occur), then
//   extra blobs struct_06, ... placed at random and present with probability 0.7.
// Image channels see the structures with different contrasts, plus Gaussian noise. Intensities add
// up, so every structure differs from what it lies on (its parent, an overlapping structure,
// background) by its own contrast, whose magnitude is at least kPhantomMinAbsContrast.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "mlseg/core/image.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

/// Every structure's contrast, in every image channel, is at least this in magnitude: with the
/// default noise_std (0.1) each structure stands 5 noise standard deviations from its surroundings.
constexpr double kPhantomMinAbsContrast = 0.5;

/// How the phantom's labels are written (the dataset.json it produces says the same).
enum class PhantomLabelFormat {
  label_map,      ///< plain multi-class map; overlap resolved by the innermost (last) channel
  regions,        ///< nnU-Net regions: one label per observed channel combination
  bitmask,        ///< bit c of the voxel value = channel c (at most 62 channels)
  multihot4d,     ///< one 4D file, one volume per channel
  channel_masks,  ///< one mask file per channel in labelsTr/CASE/
};
std::string to_string(PhantomLabelFormat format);
bool parse_phantom_label_format(const std::string& text, PhantomLabelFormat& format);

struct PhantomOptions {
  int num_cases = 8;                                 ///< training cases
  int num_test_cases = 0;                            ///< cases in imagesTs (no labels)
  std::array<std::int64_t, 3> shape_zyx{32, 48, 48};  ///< z = 1 makes a 2D dataset
  std::array<double, 3> spacing_zyx_mm{2.0, 1.0, 1.0};
  int num_channels = 6;        ///< label channels
  int num_image_channels = 1;  ///< image files per case
  PhantomLabelFormat label_format = PhantomLabelFormat::regions;
  std::string file_ending = ".nii.gz";  ///< .png writes a 2D dataset (needs shape z = 1)
  int rare_every = 4;                   ///< the "rare" channel is in case i iff i % rare_every == 0
  double noise_std = 0.1;               ///< image noise; contrasts are 0.5 to 3.0 (kPhantomMinAbsContrast)
  std::uint64_t seed = 1234;
  std::string dataset_name = "Dataset900_Phantom";
  int threads = 0;          ///< 0 = all cores
  bool show_progress = true;
};

struct PhantomCase {
  std::string case_id;
  Image image;      ///< float32 [num_image_channels, Z, Y, X]
  CodeVolume code;  ///< the true channels (overlapping)
};

/// The channel names for `num_channels` channels.
std::vector<std::string> phantom_channel_names(int num_channels);

/// Case `index` of the dataset, the same for the same options on every machine.
PhantomCase make_phantom_case(int index, const PhantomOptions& options, bool test_case = false);

/// Writes a complete nnU-Net-layout dataset (dataset.json, imagesTr, labelsTr, imagesTs) into
/// `output_dir`, which must not exist or be empty. The folder appears whole or not at all.
void write_phantom_dataset(const std::filesystem::path& output_dir, const PhantomOptions& options);

}  // namespace mlseg
