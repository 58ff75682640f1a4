#include <gtest/gtest.h>

#include <regex>

#include "mlseg/io/json_file.h"
#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;

TEST(PlanCli, RunsAnalyzeWhenMissingWritesPlansAndCheckCatchesABadPatch) {
  testing::TempDir dir;
  const fs::path dataset = dir / "Dataset962_PlanCli";
  ASSERT_EQ(testing::run_mlseg("synth -q --cases 4 --channels 3 --shape 12,32,32 --format bitmask '" + dataset.string() + "'").exit_code, 0);
  const std::string work = "--work-dir '" + (dir / "work").string() + "' ";
  const auto result = testing::run_mlseg("plan --threads 2 " + work + "'" + dataset.string() + "'");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("running mlseg analyze first"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("3d_fullres: patch"), std::string::npos) << result.output;
  EXPECT_FALSE(std::regex_search(result.output, std::regex("\\bnan\\b", std::regex::icase))) << result.output;
  const fs::path plans_file = dir / "work/Dataset962_PlanCli/plans.json";
  ASSERT_TRUE(fs::exists(plans_file));
  const auto ok = testing::run_mlseg("plan --check " + work + "'" + dataset.string() + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;

  auto plans = read_json_file(plans_file);
  // Overlapping bitmask channels: sigmoid or powerset, as analyze recommends; never softmax.
  const auto labels = read_json_file(dir / "work/Dataset962_PlanCli/analysis/labels.json");
  EXPECT_EQ(plans["label_encoding"], labels["recommendations"]["encoding"]);
  EXPECT_NE(plans["label_encoding"], "softmax");
  auto& patch = plans["configurations"]["3d_fullres"]["patch_size"];
  patch[1] = patch[1].get<int>() + 1;
  write_json_file(plans_file, plans);
  const auto bad = testing::run_mlseg("plan --check " + work + "'" + dataset.string() + "'");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("configurations.3d_fullres.patch_size: axis 1"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("fix: use"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace mlseg
