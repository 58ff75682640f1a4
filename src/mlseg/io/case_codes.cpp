#include "mlseg/io/case_codes.h"

#include "mlseg/core/error.h"
#include "mlseg/io/case_file_checks.h"
#include "mlseg/labels/code_encode.h"

namespace mlseg {
using detail::located_in_case;

CaseCodes read_case_codes(const Dataset& dataset, const CaseFiles& files, const ImageReadOptions& options) {
  const LabelSpec& spec = dataset.labels;
  CaseCodes result;
  if (spec.format == LabelFormat::channel_masks) {
    for (int c = 0; c < spec.num_channels(); ++c) {
      const auto& path = files.channel_mask_files.at(c);
      const LabelPixels mask = located_in_case(files.case_id, path, [&] {
        if (path.empty()) {
          throw Error("no mask file for channel " + spec.channels[c].name, "add it to the case's entry", {});
        }
        return read_label_pixels(path, options);
      });
      if (c == 0) {
        result.geometry = mask.header.geometry;
        result.code = empty_code_array(mask.header.shape_zyx, spec.num_channels());
      } else {
        detail::require_case_grid(result.code.shape_zyx, mask.header.shape_zyx, files.case_id, path);
      }
      // An RGB-saved mask: any channel nonzero counts as inside.
      add_channel_mask(result.code, c, mask.view());
    }
    return result;
  }
  const LabelPixels label = located_in_case(files.case_id, files.label, [&] { return read_label_pixels(files.label, options); });
  result.geometry = label.header.geometry;
  located_in_case(files.case_id, files.label, [&] {
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
