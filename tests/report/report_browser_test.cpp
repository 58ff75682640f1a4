// End to end in a real browser: Debian's chromium renders the report headless; the screenshot
// must show something and the page must log nothing to the console.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/png_decode.h"
#include "mlseg/report/html_report.h"
#include "report/report_test_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

namespace fs = std::filesystem;

constexpr int kWidth = 1200, kHeight = 3000;

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    const std::string probe = std::string("command -v ") + name + " > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return name;
  }
  return "";
}

std::string read_file(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream bytes;
  bytes << stream.rdbuf();
  return bytes.str();
}

TEST(ReportInBrowser, RendersNonBlankWithoutConsoleErrors) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium not installed: run scripts/install-deps.sh (it installs Debian's chromium for this test)";
  }
  testing::TempDir dir;
  const fs::path page = dir / "report.html";
  ReportOptions options;
  options.max_slice_cases = 1;
  write_report(testing::synthetic_run().dataset_work, page, options);

  const fs::path screenshot = dir / "screenshot.png";
  const fs::path log = dir / "chromium.log";
  const std::string command = "timeout 120 " + chromium +
                              " --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions"
                              " --enable-logging=stderr --v=0 --user-data-dir='" + (dir / "profile").string() +
                              "' --window-size=" + std::to_string(kWidth) + "," + std::to_string(kHeight) +
                              " --screenshot='" + screenshot.string() + "' 'file://" + page.string() + "' > '" +
                              log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  const std::string output = read_file(log);
  ASSERT_EQ(status, 0) << command << "\n" << output;

  // Console messages (errors, uncaught exceptions, failed loads) are logged as ":CONSOLE" lines.
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.find(":CONSOLE"), std::string::npos) << line;
    EXPECT_EQ(line.find("Uncaught"), std::string::npos) << line;
  }

  const testing::DecodedPng png = testing::decode_png(read_file(screenshot));
  ASSERT_TRUE(png.ok) << png.problem << "\n" << output;
  EXPECT_EQ(png.width, kWidth);
  EXPECT_EQ(png.height, kHeight);
  ASSERT_GE(png.channels, 3);
  std::set<std::uint32_t> colours;
  std::size_t non_white = 0;
  for (std::size_t i = 0; i + 2 < png.pixels.size(); i += static_cast<std::size_t>(png.channels)) {
    const std::uint32_t rgb = (png.pixels[i] << 16) | (png.pixels[i + 1] << 8) | png.pixels[i + 2];
    colours.insert(rgb);
    non_white += rgb != 0xffffff;
  }
  // Text, charts and the palette: many colours, and a real share of the page is drawn on.
  EXPECT_GT(colours.size(), 50u);
  EXPECT_GT(static_cast<double>(non_white) / static_cast<double>(kWidth * kHeight), 0.02);
  // Keep the screenshot where a person can look at it.
  const char* keep = std::getenv("MLSEG_REPORT_SCREENSHOT");
  if (keep != nullptr && *keep != '\0') fs::copy_file(screenshot, keep, fs::copy_options::overwrite_existing);
}

}  // namespace
}  // namespace mlseg
