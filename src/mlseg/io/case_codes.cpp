#include "mlseg/io/case_codes.h"

#include "mlseg/core/error.h"
#include "mlseg/labels/code_encode.h"

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

}  // namespace

CaseCodes read_case_codes(const Dataset& dataset, const CaseFiles& files, const ImageReadOptions& options) {
  const LabelSpec& spec = dataset.labels;
  CaseCodes result;
  if (spec.format == LabelFormat::channel_masks) {
    for (int c = 0; c < spec.num_channels(); ++c) {
      const auto& path = files.channel_mask_files.at(c);
      const LabelPixels mask = located(files.case_id, path, [&] {
        if (path.empty()) {
          throw Error("no mask file for channel " + spec.channels[c].name, "add it to the case's entry", {});
        }
        return read_label_pixels(path, options);
      });
      if (c == 0) {
        result.geometry = mask.header.geometry;
        result.code = empty_code_array(mask.header.shape_zyx, spec.num_channels());
      } else if (mask.header.shape_zyx != result.code.shape_zyx) {
        throw Error("shape " + format_shape(mask.header.shape_zyx) + " differs from the case's first file (" +
                        format_shape(result.code.shape_zyx) + ")",
                    "resample or crop the files of a case to one grid", {path.string(), files.case_id, ""});
      }
      // An RGB-saved mask: any channel nonzero counts as inside.
      add_channel_mask(result.code, c, mask.view());
    }
    return result;
  }
  const LabelPixels label = located(files.case_id, files.label, [&] { return read_label_pixels(files.label, options); });
  result.geometry = label.header.geometry;
  located(files.case_id, files.label, [&] {
    if (spec.format == LabelFormat::multihot4d) {
      result.code = encode_multihot_values(label.view(), spec);
    } else {
      if (label.header.num_channels != 1) {
        throw Error("the label file has " + std::to_string(label.header.num_channels) +
                        " volumes/components; a " + to_string(spec.format) + " label is one volume",
                    "store one label map per case, or set \"label_format\": \"multihot4d\"", {});
      }
      result.code = encode_label_values(label.view(), spec);
    }
    return 0;
  });
  return result;
}

}  // namespace mlseg
