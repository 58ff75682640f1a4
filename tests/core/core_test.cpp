#include <gtest/gtest.h>

#include <fstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/content_hash.h"
#include "mlseg/core/error.h"
#include "mlseg/core/geometry.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/text_table.h"
#include "test_support.h"

namespace mlseg {
namespace {

TEST(CoreError, MessageNamesFileCaseChannelAndFix) {
  const Error error("label values not declared: 7", "add 7 to labels", {"labelsTr/a.nii.gz", "case_1", "liver"});
  const std::string text = error.what();
  EXPECT_NE(text.find("labelsTr/a.nii.gz (case case_1, channel liver): label values not declared: 7"), std::string::npos);
  EXPECT_NE(text.find("fix: add 7 to labels"), std::string::npos);
  const Error located = Error("bad", "fix it").with_code("x").located({"f.nii", "c", ""});
  EXPECT_EQ(located.where().file, "f.nii");
  EXPECT_EQ(located.code(), "x");
}

TEST(CoreGeometry, TolerancesSeparateSpacingOriginDirection) {
  Geometry a, b;
  b.spacing_zyx_mm = {1.00001, 1, 1};
  EXPECT_TRUE(spacing_matches(a, b));
  b.spacing_zyx_mm = {1.01, 1, 1};
  EXPECT_FALSE(spacing_matches(a, b));
  b = a;
  b.origin_zyx_mm = {0, 0, 0.01};
  EXPECT_FALSE(origin_matches(a, b));
  EXPECT_TRUE(spacing_matches(a, b));
  b = a;
  b.direction_zyx[0][0] = -1;
  EXPECT_FALSE(direction_matches(a, b));
  EXPECT_NE(a, b);
}

TEST(CoreAtomicFile, KeepsFullExtensionAndLeavesNothingOnFailure) {
  testing::TempDir dir;
  EXPECT_EQ(full_extension("a/b.nii.gz"), ".nii.gz");
  EXPECT_EQ(full_extension("x.png"), ".png");
  {
    AtomicOutput output(dir / "out.nii.gz");
    EXPECT_EQ(full_extension(output.temp_path()), ".nii.gz");
    std::ofstream(output.temp_path()) << "partial";
    // not committed: destroyed here
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  write_text_file_atomically(dir / "sub/x.json", "{}\n");
  std::ifstream stream(dir / "sub/x.json");
  std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{}\n");
}

TEST(CoreHash, DiffersForDifferentContentAndLength) {
  const std::string a = "hippocampus_011", b = "hippocampus_010";
  EXPECT_EQ(hash_bytes(a.data(), a.size()), hash_bytes(a.data(), a.size()));
  EXPECT_NE(hash_bytes(a.data(), a.size()), hash_bytes(b.data(), b.size()));
  EXPECT_NE(hash_bytes(a.data(), a.size()), hash_bytes(a.data(), a.size() - 1));
  const std::vector<char> zeros8(8, 0), zeros16(16, 0);
  EXPECT_NE(hash_bytes(zeros8.data(), 8), hash_bytes(zeros16.data(), 16));
}

TEST(CoreParallel, VisitsEveryIndexOnce) {
  std::vector<std::atomic<int>> visits(1000);
  parallel_for(visits.size(), 4, [&](std::size_t i) { visits[i]++; });
  for (auto& v : visits) EXPECT_EQ(v.load(), 1);
}

TEST(CoreTextTable, AlignsColumnsAndWrapsLongCells) {
  TextTable table({"a", "long header"});
  table.add_row({"xyz", "one two three four"});
  const std::string text = table.render(8);
  EXPECT_NE(text.find("a    long\n     header\n"), std::string::npos);
  EXPECT_NE(text.find("xyz  one two"), std::string::npos);
  EXPECT_NE(text.find("     three"), std::string::npos);
}

TEST(CoreTextTable, KeepsMarkedColumnsWhole) {
  TextTable table({"file", "problem"});
  table.keep_whole(0);
  table.add_row({"labelsTr/a_very_long_folder_name/structure.nii.gz", "a long problem text here"});
  const std::string text = table.render(10);
  EXPECT_NE(text.find("labelsTr/a_very_long_folder_name/structure.nii.gz  a long"), std::string::npos) << text;
}

TEST(CoreProgress, FormatsDurations) {
  EXPECT_EQ(format_duration(0.84), "0.8 s");
  EXPECT_EQ(format_duration(125), "2 min 05 s");
  EXPECT_EQ(format_duration(3720), "1 h 02 min");
}

}  // namespace
}  // namespace mlseg
