#pragma once
// NIfTI images through mlseg's own reader (nifti_format.h), with the same checks, header and
// results as the ITK reader in pixel_io.h: the ITK-free build reads NIfTI with these, and the
// ITK build uses them for scalar NIfTI pixels. Torch-free.
#include <filesystem>
#include <optional>

#include "mlseg/io/pixel_convert.h"
#include "mlseg/io/pixel_io.h"

namespace mlseg {

/// True for ".nii" and ".nii.gz" (any case).
bool is_nifti_file(const std::filesystem::path& path);

ImageHeader read_nifti_image_header(const std::filesystem::path& path, const ImageReadOptions& options = {});
IntensityPixels read_nifti_intensity_pixels(const std::filesystem::path& path, const ImageReadOptions& options = {});
LabelPixels read_nifti_label_pixels(const std::filesystem::path& path, const ImageReadOptions& options = {},
                                    bool compact = true);

namespace detail {
/// The pixel section of a single-file NIfTI with a datatype mlseg handles, planar; nullopt otherwise.
std::optional<StoredPixels> read_nifti_stored_pixels(const std::filesystem::path& path, std::int64_t num_elements);
}  // namespace detail

}  // namespace mlseg
