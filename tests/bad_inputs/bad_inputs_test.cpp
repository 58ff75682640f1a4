// The catalogue of bad inputs (tests/bad_inputs/README.md): every row of its table is a bad
// input class that this test generates, runs the named command on, and checks against the
// catalogue's exit code and message. The README is the specification: a row without a generator
// here, or a message that changed, fails the test.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <functional>
#include <map>
#include <regex>
#include <sstream>

#include "run_executable.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Overwrites bytes of a file in place.
void poke(const fs::path& file, std::size_t offset, const void* bytes, std::size_t size) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(size));
}

constexpr std::size_t kNiftiDim = 40, kNiftiData = 352;  // NIfTI-1: dim[8] (int16), single-file data offset

struct Row {
  std::string id, command;
  int exit_code = 0;
  std::string message;
};

// The catalogue's table: | id | input | command | exit | message |
std::vector<Row> catalogue() {
  const fs::path readme = fs::path(__FILE__).parent_path() / "README.md";
  std::ifstream in(readme);
  std::vector<Row> rows;
  const std::regex row("^\\| `([a-z_0-9]+)` \\|[^|]*\\| `mlseg ([a-z]+)[^`]*` \\| ([0-9]+) \\| `([^`]*)` \\|");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, row)) rows.push_back({m[1], m[2], std::stoi(m[3]), m[4]});
  }
  return rows;
}

// A small valid dataset (uncompressed NIfTI, so headers and voxels can be edited in place).
fs::path make_dataset(const fs::path& dir) {
  const fs::path raw = dir / "Dataset900_Phantom";
  const auto result = mlseg::testing::run_mlseg("synth " + raw.string() + " --cases 3 --shape 8 12 12 --channels 2 --format regions --file-ending .nii -q");
  if (result.exit_code != 0) throw std::runtime_error(result.output);
  return raw;
}

// Each generator breaks the valid dataset `raw` one way; returns the arguments after the command.
using Generator = std::function<std::string(const fs::path& raw, const fs::path& dir)>;

std::map<std::string, Generator> generators() {
  std::map<std::string, Generator> g;
  const auto image = [](const fs::path& raw) { return raw / "imagesTr/phantom_0001_0000.nii"; };
  const auto label = [](const fs::path& raw) { return raw / "labelsTr/phantom_0001.nii"; };
  g["no_dataset_json"] = [](const fs::path& raw, const fs::path&) {
    fs::remove(raw / "dataset.json");
    return raw.string();
  };
  g["dataset_json_not_json"] = [](const fs::path& raw, const fs::path&) {
    write_text(raw / "dataset.json", "{ \"labels\": {\"background\": 0, ");
    return raw.string();
  };
  g["dataset_json_no_labels"] = [](const fs::path& raw, const fs::path&) {
    std::string text = read_text(raw / "dataset.json");
    text = std::regex_replace(text, std::regex("\"labels\""), "\"labelz\"");
    write_text(raw / "dataset.json", text);
    return raw.string();
  };
  g["image_empty_file"] = [image](const fs::path& raw, const fs::path&) {
    fs::resize_file(image(raw), 0);
    return raw.string();
  };
  g["image_truncated"] = [image](const fs::path& raw, const fs::path&) {
    fs::resize_file(image(raw), fs::file_size(image(raw)) / 2);
    return raw.string();
  };
  g["header_dims_too_large"] = [image](const fs::path& raw, const fs::path&) {
    const std::int16_t huge = 30000;
    poke(image(raw), kNiftiDim + 2, &huge, sizeof(huge));  // dim[1]
    return raw.string();
  };
  g["label_value_undeclared"] = [label](const fs::path& raw, const fs::path&) {
    const std::uint8_t seven = 7;
    poke(label(raw), kNiftiData + 100, &seven, 1);
    return raw.string();
  };
  g["label_grid_differs"] = [label](const fs::path& raw, const fs::path&) {
    const std::int16_t six = 6;
    poke(label(raw), kNiftiDim + 2, &six, sizeof(six));  // dim[1] 12 -> 6
    return raw.string();
  };
  g["image_nan"] = [image](const fs::path& raw, const fs::path&) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    poke(image(raw), kNiftiData + 4 * 50, &nan, sizeof(nan));
    return raw.string();
  };
  g["label_missing"] = [label](const fs::path& raw, const fs::path&) {
    fs::remove(label(raw));
    return raw.string();
  };
  g["channel_file_missing"] = [](const fs::path& raw, const fs::path&) {
    std::string text = read_text(raw / "dataset.json");
    text = std::regex_replace(text, std::regex("\"0\": \"MR_A\""), "\"0\": \"MR_A\", \"1\": \"MR_B\"");
    write_text(raw / "dataset.json", text);
    return raw.string();
  };
  g["plans_json_damaged"] = [](const fs::path& raw, const fs::path& dir) {
    const fs::path work = dir / "work";
    mlseg::testing::run_mlseg("plan " + raw.string() + " --work-dir " + work.string() + " -q");
    write_text(work / "Dataset900_Phantom/plans.json", "{\"configurations\": 3}");
    return raw.string() + " --work-dir " + work.string();
  };
  g["checkpoint_truncated"] = [](const fs::path& raw, const fs::path& dir) {
    const fs::path model = dir / "model/fold_0";
    fs::create_directories(model);
    write_text(model / "checkpoint_final.pt", "PK\x03\x04 this is not a whole archive");
    return "-i " + (raw / "imagesTr").string() + " -o " + (dir / "out").string() + " -m " + (dir / "model").string();
  };
  return g;
}

TEST(BadInputs, EveryCatalogueRowGivesItsExitCodeAndMessage) {
  const std::vector<Row> rows = catalogue();
  ASSERT_GE(rows.size(), 12u) << "tests/bad_inputs/README.md lost its table";
  const auto make = generators();
  for (const Row& row : rows) {
    SCOPED_TRACE(row.id);
    const auto generator = make.find(row.id);
    ASSERT_NE(generator, make.end()) << "no generator for catalogue row " << row.id;
    mlseg::testing::TempDir dir;
    const fs::path raw = make_dataset(dir.path());
    const std::string arguments = generator->second(raw, dir.path());
    const auto result = mlseg::testing::run_mlseg(row.command + " " + arguments);
    EXPECT_EQ(result.exit_code, row.exit_code) << result.output;
    EXPECT_NE(result.output.find(row.message), std::string::npos) << "expected: " << row.message << "\ngot:\n" << result.output;
    EXPECT_EQ(result.output.find("Exception raised from"), std::string::npos) << result.output;  // no LibTorch trace
    EXPECT_FALSE(std::regex_search(result.output, std::regex("\\bnan\\b"))) << result.output;
  }
  EXPECT_EQ(rows.size(), make.size()) << "a generator without a catalogue row";
}

}  // namespace
