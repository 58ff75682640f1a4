#pragma once
// Slice images of validation cases: the raw image in grey, each channel's reference as a
// coloured outline and its prediction as a translucent fill, drawn by the project (PNG).
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/core/png_write.h"

namespace mlseg {

struct ValidationSliceOptions {
  int max_cases = 3;           ///< validation cases shown (first by case id)
  int max_channel_panels = 6;  ///< per-channel panels per case (channels present first)
  int composite_px = 320;      ///< longest side of the all-channel image
  int panel_px = 200;          ///< longest side of a per-channel image
};

struct SlicePanel {
  std::string title;     ///< e.g. "all channels, z = 14" or "lesion, z = 9"
  PixelImage image;
};

struct CaseSlices {
  std::string case_id;
  std::vector<SlicePanel> panels;
  std::vector<std::string> notes;  ///< channels left out, shape problems, ...
};

struct ValidationSlices {
  std::vector<std::string> channel_names;  ///< dataset order; colour of channel c = channel_colour(c)
  std::vector<CaseSlices> cases;
  std::vector<std::string> problems;       ///< cases that could not be drawn, and why
};

/// Draws up to options.max_cases cases that have a prediction in `validation_dir` (in the
/// dataset's label format and file ending) and a reference in the raw dataset. The axial slice
/// (z) with most reference + prediction voxels is shown; per-channel panels use their own best
/// slice. Throws mlseg::Error only if the raw dataset cannot be loaded.
ValidationSlices render_validation_slices(const std::filesystem::path& raw_dataset_dir,
                                          const std::filesystem::path& validation_dir,
                                          const ValidationSliceOptions& options = {});

}  // namespace mlseg
