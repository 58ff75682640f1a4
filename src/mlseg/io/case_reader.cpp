#include "mlseg/io/case_reader.h"

#include <vector>

#include "mlseg/core/error.h"

namespace mlseg {

namespace {
template <typename Function>
auto located(const std::string& case_id, const std::filesystem::path& file, Function&& function) {
  try {
    return function();
  } catch (const Error& error) {
    throw error.located({file.string(), case_id, ""});
  }
}

void require_same_shape(const Image& first, const Image& other, const std::string& case_id,
                        const std::filesystem::path& file) {
  if (first.shape_zyx() != other.shape_zyx()) {
    throw Error("shape " + format_shape(other.shape_zyx()) + " differs from the case's first file (" +
                    format_shape(first.shape_zyx()) + ")",
                "resample or crop the files of a case to one grid", {file.string(), case_id, ""});
  }
}
}  // namespace

Image read_case_images(const Dataset&, const CaseFiles& files, const ImageReadOptions& options) {
  std::vector<torch::Tensor> channels;
  Image result;
  for (std::size_t i = 0; i < files.images.size(); ++i) {
    Image image = located(files.case_id, files.images[i], [&] { return read_image(files.images[i], options); });
    if (i == 0) {
      result.geometry = image.geometry;
      result.data = image.data;
    } else {
      require_same_shape(result, image, files.case_id, files.images[i]);
    }
    channels.push_back(image.data);
  }
  if (channels.size() > 1) result.data = torch::cat(channels, 0);
  return result;
}

CaseLabels read_case_labels(const Dataset& dataset, const CaseFiles& files, const ImageReadOptions& options) {
  CaseCodes codes = read_case_codes(dataset, files, options);
  return {code_volume_from(codes.code), codes.geometry};
}

}  // namespace mlseg
