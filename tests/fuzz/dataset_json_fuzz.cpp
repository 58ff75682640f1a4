// libFuzzer target: dataset.json through load_dataset (dataset.h) — JSON parse, channel names,
// labels / regions / label formats, file endings — in a dataset folder with empty imagesTr/ and
// labelsTr/. Bad input must end in mlseg::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "fuzz_input_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path root = [] {
    const auto folder = mlseg::fuzz::scratch_folder() / "Dataset001_Fuzz";
    std::filesystem::create_directories(folder / "imagesTr");
    std::filesystem::create_directories(folder / "labelsTr");
    return folder;
  }();
  mlseg::fuzz::write_input("Dataset001_Fuzz/dataset.json", data, size);
  try {
    (void)mlseg::load_dataset(root);
  } catch (const mlseg::Error&) {
  }
  return 0;
}
