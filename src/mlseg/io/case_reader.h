#pragma once
// Reading one case of a Dataset: its image channels stacked, and its labels as a channel code.
#include "mlseg/core/image.h"
#include "mlseg/io/case_codes.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/image_io.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

struct CaseLabels {
  CodeVolume code;
  Geometry geometry;  ///< of the (first) label file
};

/// All image files of the case as one float32 [C, Z, Y, X] image (files' channels concatenated in
/// channel order). Throws mlseg::Error naming the case and file on any read or shape problem.
Image read_case_images(const Dataset& dataset, const CaseFiles& files, const ImageReadOptions& options = {});

/// The case's labels, in any label format, as a code volume. Throws mlseg::Error naming the case
/// and file on read problems, undeclared values, or masks whose shape differs.
CaseLabels read_case_labels(const Dataset& dataset, const CaseFiles& files, const ImageReadOptions& options = {});

}  // namespace mlseg
