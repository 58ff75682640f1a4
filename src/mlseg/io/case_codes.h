#pragma once
// A case's labels as channel codes, without LibTorch (what `mlseg evaluate` reads). The tensor
// pipeline's read_case_labels (case_reader.h) wraps the same codes.
#include "mlseg/core/geometry.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/pixel_io.h"
#include "mlseg/labels/code_array.h"

namespace mlseg {

struct CaseCodes {
  CodeArray code;
  Geometry geometry;  ///< of the (first) label file
};

/// The case's labels, in any label format, as codes. Throws mlseg::Error naming the case and
/// file on read problems, undeclared values, or masks whose shape differs.
CaseCodes read_case_codes(const Dataset& dataset, const CaseFiles& files, const ImageReadOptions& options = {});

}  // namespace mlseg
