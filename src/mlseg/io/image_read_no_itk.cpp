// Built when MLSEG_WITH_ITK=OFF: everything that works from the preprocessed store still builds;
// reading raw medical images says clearly what is missing.
#include "mlseg/core/error.h"
#include "mlseg/io/pixel_io.h"

namespace mlseg {

[[noreturn]] void throw_no_image_io(const std::filesystem::path& path) {
  throw Error("this mlseg was built without ITK (MLSEG_WITH_ITK=OFF) and cannot read or write "
              "medical image files",
              "rebuild with -DMLSEG_WITH_ITK=ON (needs libinsighttoolkit5-dev), or run this "
              "stage on a machine that has it",
              {path.string(), "", ""});
}

bool image_io_available() { return false; }
ImageHeader read_image_header(const std::filesystem::path& path, const ImageReadOptions&) { throw_no_image_io(path); }
IntensityPixels read_intensity_pixels(const std::filesystem::path& path, const ImageReadOptions&) {
  throw_no_image_io(path);
}
LabelPixels read_label_pixels(const std::filesystem::path& path, const ImageReadOptions&, bool) {
  throw_no_image_io(path);
}

}  // namespace mlseg
