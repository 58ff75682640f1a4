// `mlseg` runs evaluate without LibTorch and hands every other command to mlseg-full.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "test_support.h"

namespace {
namespace fs = std::filesystem;
using mlseg::testing::run_mlseg;
using mlseg::testing::TempDir;

std::string command_output(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string text;
  if (!pipe) return text;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe.get())) text += buffer.data();
  return text;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Launcher, MlsegItselfDoesNotLoadLibTorch) {
  const std::string libraries = command_output(std::string("ldd '") + MLSEG_EXECUTABLE + "' 2>&1");
  ASSERT_TRUE(contains(libraries, "libc.so")) << "ldd did not list the executable's libraries:\n" << libraries;
  EXPECT_FALSE(contains(libraries, "libtorch")) << libraries;
  EXPECT_FALSE(contains(libraries, "libc10")) << libraries;
  const fs::path full = fs::path(MLSEG_EXECUTABLE).parent_path() / "mlseg-full";
  ASSERT_TRUE(fs::exists(full)) << full;
  EXPECT_TRUE(contains(command_output("ldd '" + full.string() + "' 2>&1"), "libtorch"));
}

TEST(Launcher, OtherCommandsAndHelpRunInMlsegFull) {
  const auto version = run_mlseg("--version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_TRUE(contains(version.output, "mlseg 0.1.0")) << version.output;
  const auto help = run_mlseg("--help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  for (const char* command : {"synth", "verify", "train", "predict", "evaluate", "report", "demo"}) {
    EXPECT_TRUE(contains(help.output, command)) << command << " missing from --help:\n" << help.output;
  }
  const auto evaluate_help = run_mlseg("evaluate --help");
  EXPECT_EQ(evaluate_help.exit_code, 0) << evaluate_help.output;
  EXPECT_TRUE(contains(evaluate_help.output, "--ref")) << evaluate_help.output;
  const auto unknown = run_mlseg("no-such-command");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
}

TEST(Launcher, MissingFullExecutableIsAClearError) {
  TempDir dir;
  const fs::path lone = dir / "mlseg";
  fs::copy_file(MLSEG_EXECUTABLE, lone);
  const std::string output = command_output("'" + lone.string() + "' synth --help 2>&1; echo \"exit=$?\"");
  EXPECT_TRUE(contains(output, "mlseg-full")) << output;
  EXPECT_TRUE(contains(output, "fix:")) << output;
  EXPECT_TRUE(contains(output, "exit=2")) << output;
}

}  // namespace
