#include <iostream>
#include "mlseg/io/image_io.h"
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    try {
      auto img = mlseg::read_label_image(argv[i]);
      auto h = mlseg::read_image_header(argv[i]);
      std::cout << argv[i] << " " << img.data.sizes() << " " << h.component_type << " sp " << mlseg::format_zyx(img.geometry.spacing_zyx_mm) << " org " << mlseg::format_zyx(img.geometry.origin_zyx_mm) << " max " << img.data.max().item<long>() << "\n";
    } catch (std::exception& e) { std::cout << "ERR " << e.what() << "\n"; }
  }
}
