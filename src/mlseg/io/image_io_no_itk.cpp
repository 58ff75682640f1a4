// Built when MLSEG_WITH_ITK=OFF: everything that works from the preprocessed store still builds;
// reading raw medical images says clearly what is missing.
#include "mlseg/core/error.h"
#include "mlseg/io/image_io.h"

namespace mlseg {
namespace {
[[noreturn]] void no_itk(const std::filesystem::path& path) {
  throw Error("this mlseg was built without ITK (MLSEG_WITH_ITK=OFF) and cannot read or write "
              "medical image files",
              "rebuild with -DMLSEG_WITH_ITK=ON (needs libinsighttoolkit5-dev), or run this "
              "stage on a machine that has it",
              {path.string(), "", ""});
}
}  // namespace

bool image_io_available() { return false; }
ImageHeader read_image_header(const std::filesystem::path& path, const ImageReadOptions&) { no_itk(path); }
Image read_image(const std::filesystem::path& path, const ImageReadOptions&) { no_itk(path); }
Image read_label_image(const std::filesystem::path& path, const ImageReadOptions&) { no_itk(path); }
Image read_label_image_compact(const std::filesystem::path& path, const ImageReadOptions&) { no_itk(path); }
void write_image(const Image&, const std::filesystem::path& path, const ImageWriteOptions&) { no_itk(path); }

}  // namespace mlseg
