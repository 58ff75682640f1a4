// Built when MLSEG_WITH_ITK=OFF (see image_read_no_itk.cpp): NIfTI is written by mlseg's own
// writer (nifti_format.h); other formats say what is missing.
#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/nifti_format.h"
#include "mlseg/io/nifti_image.h"

namespace mlseg {

[[noreturn]] void throw_no_image_io(const std::filesystem::path& path);

namespace {

int nifti_datatype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kUInt8: return kNiftiUInt8;
    case torch::kInt8: return kNiftiInt8;
    case torch::kInt16: return kNiftiInt16;
    case torch::kInt32: return kNiftiInt32;
    case torch::kInt64: return kNiftiInt64;
    case torch::kFloat32: return kNiftiFloat32;
    case torch::kFloat64: return kNiftiFloat64;
    default: return 0;
  }
}

}  // namespace

void write_image(const Image& image, const std::filesystem::path& path, const ImageWriteOptions& options) {
  const ErrorLocation where{path.string(), "", ""};
  if (!image.data.defined() || image.data.dim() != 4) {
    throw Error("an image to write must be a [C, Z, Y, X] tensor", "this is a bug in the caller", where);
  }
  if (!is_nifti_file(path)) throw_no_image_io(path);
  torch::Tensor data = image.data.cpu();
  if (data.scalar_type() == torch::kBool) data = data.to(torch::kUInt8);
  data = data.contiguous();
  const int datatype = nifti_datatype_of(data.scalar_type());
  if (datatype == 0) {
    throw Error(std::string("cannot store tensors of type ") + c10::toString(data.scalar_type()),
                "convert to uint8, int16, int32, int64, float32 or float64", where);
  }
  NiftiWriteInput input;
  input.shape_zyx = {data.size(1), data.size(2), data.size(3)};
  input.num_channels = data.size(0);
  input.geometry = image.geometry;
  input.datatype = datatype;
  input.data = data.data_ptr();
  NiftiWriteOptions write_options;
  if (!options.compress) write_options.compression_level = 0;
  write_nifti(path, input, write_options);
}

}  // namespace mlseg
