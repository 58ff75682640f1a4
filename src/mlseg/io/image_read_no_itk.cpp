// Built when MLSEG_WITH_ITK=OFF: NIfTI (.nii, .nii.gz) is read by mlseg's own reader
// (nifti_image.h), with the same checks and results as the ITK build; every other format says
// clearly what is missing.
#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/nifti_image.h"
#include "mlseg/io/pixel_io.h"

namespace mlseg {

[[noreturn]] void throw_no_image_io(const std::filesystem::path& path) {
  throw Error("this mlseg was built without ITK (MLSEG_WITH_ITK=OFF): it reads and writes NIfTI (.nii, .nii.gz) "
              "only, not '" + full_extension(path) + "' files",
              "convert the images to .nii.gz, or rebuild with -DMLSEG_WITH_ITK=ON (needs libinsighttoolkit5-dev)",
              {path.string(), "", ""});
}

bool image_io_available() { return false; }

ImageHeader read_image_header(const std::filesystem::path& path, const ImageReadOptions& options) {
  if (!is_nifti_file(path)) throw_no_image_io(path);
  return read_nifti_image_header(path, options);
}

IntensityPixels read_intensity_pixels(const std::filesystem::path& path, const ImageReadOptions& options) {
  if (!is_nifti_file(path)) throw_no_image_io(path);
  return read_nifti_intensity_pixels(path, options);
}

LabelPixels read_label_pixels(const std::filesystem::path& path, const ImageReadOptions& options, bool compact) {
  if (!is_nifti_file(path)) throw_no_image_io(path);
  return read_nifti_label_pixels(path, options, compact);
}

}  // namespace mlseg
