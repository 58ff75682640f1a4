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
  const LabelSpec& spec = dataset.labels;
  CaseLabels result;
  if (spec.format == LabelFormat::channel_masks) {
    Image first;
    for (int c = 0; c < spec.num_channels(); ++c) {
      const auto& path = files.channel_mask_files.at(c);
      Image mask = located(files.case_id, path, [&] {
        if (path.empty()) {
          throw Error("no mask file for channel " + spec.channels[c].name, "add it to the case's entry", {});
        }
        return read_label_image_compact(path, options);
      });
      if (c == 0) {
        first = mask;
        result.geometry = mask.geometry;
        result.code = empty_code_volume(mask.shape_zyx(), spec.num_channels());
      } else {
        require_same_shape(first, mask, files.case_id, path);
      }
      // An RGB-saved mask: any channel nonzero counts as inside.
      add_channel_mask(result.code, c, mask.data.ne(0).any(0, true));
    }
    return result;
  }
  Image label = located(files.case_id, files.label, [&] { return read_label_image_compact(files.label, options); });
  result.geometry = label.geometry;
  located(files.case_id, files.label, [&] {
    if (spec.format == LabelFormat::multihot4d) {
      result.code = encode_multihot(label.data, spec);
    } else {
      if (label.num_channels() != 1) {
        throw Error("the label file has " + std::to_string(label.num_channels()) +
                        " volumes/components; a " + to_string(spec.format) + " label is one volume",
                    "store one label map per case, or set \"label_format\": \"multihot4d\"", {});
      }
      result.code = encode_label_map(label.data, spec);
    }
    return 0;
  });
  return result;
}

}  // namespace mlseg
