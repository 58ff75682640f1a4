#pragma once
// Internal to io's NIfTI files (nifti_format.cpp reads, nifti_write.cpp writes).
#include <array>
#include <filesystem>

namespace mlseg::detail {

/// True for a file name ending in ".gz".
bool ends_with_gz(const std::filesystem::path& path);

/// NIfTI-1 quaternion (b, c, d) of a rotation matrix, as nifti1_io's mat44_to_quatern computes it:
/// qfac -1 when the matrix is a reflection (its third column is negated first).
struct Quaternion {
  double b = 0, c = 0, d = 0, qfac = 1;
};
Quaternion quaternion_of(std::array<std::array<double, 3>, 3> rotation);

}  // namespace mlseg::detail
