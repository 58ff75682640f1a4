// Built when MLSEG_WITH_ITK=OFF (see image_read_no_itk.cpp).
#include "mlseg/io/image_io.h"

namespace mlseg {

[[noreturn]] void throw_no_image_io(const std::filesystem::path& path);

void write_image(const Image&, const std::filesystem::path& path, const ImageWriteOptions&) { throw_no_image_io(path); }

}  // namespace mlseg
