#include <algorithm>
#include <cctype>

#include "mlseg/core/atomic_file.h"
#include "mlseg/io/pixel_io.h"

namespace mlseg {

namespace {
std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}
}  // namespace

bool is_2d_image_format(const std::string& file_ending) {
  const std::string ending = lower(file_ending);
  return ending == ".png" || ending == ".jpg" || ending == ".jpeg" || ending == ".bmp" ||
         ending == ".tif" || ending == ".tiff";
}

bool is_supported_image_file(const std::filesystem::path& path) {
  const std::string ending = lower(full_extension(path));
  return ending == ".nii" || ending == ".nii.gz" || ending == ".nrrd" || ending == ".nhdr" ||
         ending == ".mha" || ending == ".mhd" || is_2d_image_format(ending);
}

}  // namespace mlseg
