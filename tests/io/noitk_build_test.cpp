// The ITK-free build (build-noitk/, made by scripts/test.sh with -DMLSEG_WITH_ITK=OFF) against this
// ITK build, on the same inputs: the files it writes hold the same pixels and geometry, and the
// commands that read real datasets print the same results.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "mlseg/io/image_io.h"
#include "run_executable.h"
#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;

const fs::path kNoItkMlseg = MLSEG_NOITK_EXECUTABLE;

#define MLSEG_REQUIRE_NOITK_BUILD()                                                                         \
  do {                                                                                                      \
    if (!fs::exists(kNoItkMlseg)) {                                                                         \
      GTEST_SKIP() << "ITK-free build not found at " << kNoItkMlseg                                        \
                   << ": scripts/test.sh builds it (cmake -S . -B build-noitk -DMLSEG_WITH_ITK=OFF)";      \
    }                                                                                                       \
  } while (0)

std::vector<fs::path> image_files(const fs::path& root) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file() && entry.path().string().find(".nii") != std::string::npos) {
      files.push_back(fs::relative(entry.path(), root));
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Output lines without timings, which differ from run to run.
std::string without_timings(const std::string& text) {
  static const std::regex timing(R"(\d+(\.\d+)?\s?(s|ms|seconds)\b)");
  std::istringstream lines(text);
  std::string line, kept;
  while (std::getline(lines, line)) kept += std::regex_replace(line, timing, "<t>") + "\n";
  return kept;
}

TEST(ItkFreeBuild, WritesTheSameDatasetFilesAsTheItkBuild) {
  MLSEG_REQUIRE_NOITK_BUILD();
  testing::TempDir dir;
  for (const std::string format : {"regions", "multihot4d"}) {
    SCOPED_TRACE(format);
    const std::string arguments = " --cases 2 --test-cases 1 --shape 12,20,16 --image-channels 2 --channels 3 --seed 7 -q --format " + format;
    const fs::path with_itk = dir / ("itk_" + format), without_itk = dir / ("noitk_" + format);
    const auto a = testing::run_mlseg("synth '" + with_itk.string() + "'" + arguments);
    ASSERT_EQ(a.exit_code, 0) << a.output;
    const auto b = testing::run_executable(kNoItkMlseg, "synth '" + without_itk.string() + "'" + arguments);
    ASSERT_EQ(b.exit_code, 0) << b.output;
    const auto files = image_files(with_itk);
    ASSERT_EQ(files, image_files(without_itk));
    ASSERT_GE(files.size(), 7u);
    for (const fs::path& file : files) {
      SCOPED_TRACE(file.string());
      const Image itk = read_image(with_itk / file);
      const Image own = read_image(without_itk / file);
      EXPECT_TRUE(torch::equal(itk.data, own.data));
      EXPECT_TRUE(itk.geometry == own.geometry);
    }
  }
}

TEST(ItkFreeBuild, ReadsRealDatasetsLikeTheItkBuild) {
  MLSEG_REQUIRE_NOITK_BUILD();
  MLSEG_REQUIRE_SHARED_DATA();
  // verify reads every image and label header and pixel; evaluate reads predictions and references.
  const fs::path data = testing::shared_data_dir();
  const std::string hippocampus = "'" + (data / "Dataset004_Hippocampus").string() + "'";
  const auto a = testing::run_mlseg("verify " + hippocampus);
  const auto b = testing::run_executable(kNoItkMlseg, "verify " + hippocampus);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(without_timings(a.output), without_timings(b.output));
  EXPECT_NE(a.output.find("200 training cases"), std::string::npos) << a.output;
}

TEST(ItkFreeBuild, OtherFormatsGiveAClearError) {
  MLSEG_REQUIRE_NOITK_BUILD();
  testing::TempDir dir;
  const auto result = testing::run_executable(kNoItkMlseg, "synth '" + (dir / "flat").string() + "' --cases 1 --shape 1,16,16 --file-ending .png -q");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("without ITK"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find(".png"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("convert the images to .nii.gz"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace mlseg
