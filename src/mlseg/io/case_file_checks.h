#pragma once
// detail for the case readers (case_codes.cpp, case_reader.cpp): errors located in a case's file,
// and the check that all files of a case share one grid.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "mlseg/core/error.h"
#include "mlseg/core/geometry.h"

namespace mlseg::detail {

/// Runs `function`; an mlseg::Error it throws gets `file` and `case_id` filled in.
template <typename Function>
auto located_in_case(const std::string& case_id, const std::filesystem::path& file, Function&& function) {
  try {
    return function();
  } catch (const Error& error) {
    throw error.located({file.string(), case_id, ""});
  }
}

/// Throws unless `shape` (of `file`) equals the case's first file's `first_shape`.
inline void require_case_grid(const std::array<std::int64_t, 3>& first_shape, const std::array<std::int64_t, 3>& shape,
                              const std::string& case_id, const std::filesystem::path& file) {
  if (shape != first_shape) {
    throw Error("shape " + format_shape(shape) + " differs from the case's first file (" + format_shape(first_shape) + ")",
                "resample or crop the files of a case to one grid", {file.string(), case_id, ""});
  }
}

}  // namespace mlseg::detail
