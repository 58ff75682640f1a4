#include "mlseg/io/case_reader.h"

#include <vector>

#include "mlseg/io/case_file_checks.h"

namespace mlseg {

using detail::located_in_case;

Image read_case_images(const Dataset&, const CaseFiles& files, const ImageReadOptions& options) {
  std::vector<torch::Tensor> channels;
  Image result;
  for (std::size_t i = 0; i < files.images.size(); ++i) {
    Image image = located_in_case(files.case_id, files.images[i], [&] { return read_image(files.images[i], options); });
    if (i == 0) {
      result.geometry = image.geometry;
      result.data = image.data;
    } else {
      detail::require_case_grid(result.shape_zyx(), image.shape_zyx(), files.case_id, files.images[i]);
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
