#include <gtest/gtest.h>

#include <fstream>

#include "mlseg/core/error.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;

TEST(DatasetRealData, HippocampusLayoutAndChannels) {
  MLSEG_REQUIRE_SHARED_DATA();
  const Dataset dataset = load_dataset(testing::shared_data_dir() / "Dataset004_Hippocampus");
  EXPECT_EQ(dataset.name, "Dataset004_Hippocampus");
  ASSERT_EQ(dataset.training.size(), 200u);
  EXPECT_TRUE(dataset.layout_problems.empty());
  EXPECT_EQ(dataset.image_channel_names, std::vector<std::string>{"MRI"});
  EXPECT_EQ(dataset.training[0].case_id, "hippocampus_001");
  EXPECT_EQ(dataset.labels.num_channels(), 2);
  EXPECT_FALSE(dataset.labels.channels_can_overlap());
  const CaseLabels labels = read_case_labels(dataset, dataset.training[0]);
  const auto counts = count_channel_voxels(labels.code);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
}

TEST(DatasetRealData, BratsRegionsAreNestedChannels) {
  MLSEG_REQUIRE_SHARED_DATA();
  const Dataset dataset = load_dataset(testing::shared_data_dir() / "Dataset001_BraTS2015");
  ASSERT_EQ(dataset.training.size(), 5u);
  EXPECT_EQ(dataset.training[0].images.size(), 2u);
  EXPECT_TRUE(dataset.labels.is_region_based());
  const CaseLabels labels = read_case_labels(dataset, dataset.training[0]);
  const torch::Tensor masks = decode_channels(labels.code);
  // enhancing ⊂ core ⊂ whole
  EXPECT_EQ((masks[2] > masks[1]).sum().item<std::int64_t>(), 0);
  EXPECT_EQ((masks[1] > masks[0]).sum().item<std::int64_t>(), 0);
  EXPECT_GT(masks[2].sum().item<std::int64_t>(), 0);
  const Image images = read_case_images(dataset, dataset.training[0]);
  EXPECT_EQ(images.data.sizes(), (std::vector<std::int64_t>{2, 155, 240, 240}));
}

TEST(Dataset, ExplicitFileListAndChannelMaskFolders) {
  testing::TempDir dir;
  PhantomOptions options;
  options.num_cases = 3;
  options.shape_zyx = {6, 10, 12};
  options.label_format = PhantomLabelFormat::channel_masks;
  options.show_progress = false;
  write_phantom_dataset(dir / "phantom", options);
  // Same files, listed explicitly, with channels taken from the mask file names.
  nlohmann::ordered_json json = read_json_file(dir / "phantom/dataset.json");
  json.erase("labels");
  nlohmann::ordered_json entries = nlohmann::ordered_json::object();
  for (int i = 0; i < 3; ++i) {
    const std::string id = "phantom_000" + std::to_string(i);
    entries["case" + std::to_string(i)] = {{"images", {(dir / "phantom/imagesTr" / (id + "_0000.nii.gz")).string()}},
                                           {"label", "labelsTr/" + id}};
  }
  json["dataset"] = entries;
  fs::create_directories(dir / "explicit");
  fs::create_directory_symlink(dir / "phantom/labelsTr", dir / "explicit/labelsTr");
  write_json_file(dir / "explicit/dataset.json", json);
  const Dataset dataset = load_dataset(dir / "explicit");
  EXPECT_TRUE(dataset.explicit_file_list);
  ASSERT_EQ(dataset.training.size(), 3u);
  EXPECT_TRUE(dataset.layout_problems.empty());
  // Sorted file names: body, cyst, lesion, organ, rare, vessel.
  ASSERT_EQ(dataset.labels.num_channels(), 6);
  EXPECT_EQ(dataset.labels.channels[0].name, "body");
  EXPECT_EQ(dataset.labels.channels[1].name, "cyst");
  const CaseLabels labels = read_case_labels(dataset, dataset.training[0]);
  const PhantomCase truth = make_phantom_case(0, options);
  const torch::Tensor truth_masks = decode_channels(truth.code);
  const torch::Tensor masks = decode_channels(labels.code);
  EXPECT_TRUE(torch::equal(masks[1], truth_masks[4]));  // cyst
  EXPECT_TRUE(torch::equal(masks[5], truth_masks[3]));  // vessel
}

TEST(Dataset, BrokenDatasetJsonNamesTheProblem) {
  testing::TempDir dir;
  fs::create_directories(dir / "d/imagesTr");
  auto message_for = [&](const std::string& text) {
    std::ofstream(dir / "d/dataset.json") << text;
    try {
      load_dataset(dir / "d");
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_for("{\"channel_names\": {\"0\": \"CT\"},\n \"labels\": {").find("line 2"), std::string::npos);
  EXPECT_NE(message_for(R"({"labels": {"background": 0, "a": 1}, "file_ending": ".nii.gz"})").find("channel_names"),
            std::string::npos);
  EXPECT_NE(message_for(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1}})").find("file_ending"),
            std::string::npos);
  EXPECT_NE(message_for(R"({"channel_names": {"0": "CT", "2": "PET"}, "labels": {"background": 0, "a": 1}, "file_ending": ".nii.gz"})")
                .find("without gaps"),
            std::string::npos);
  EXPECT_NE(message_for(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1}, "file_ending": ".xyz"})")
                .find("file_ending"),
            std::string::npos);
  EXPECT_THROW(load_dataset(dir / "nonexistent"), Error);
}

// Found by tests/fuzz/splits_json_fuzz: nlohmann's out_of_range (a number past double's range)
// escaped read_json_file instead of an mlseg::Error.
TEST(JsonFile, NumberOverflowIsAnError) {
  testing::TempDir dir;
  std::ofstream(dir / "splits_final.json") << "[ 55e557 ]";
  EXPECT_THROW((void)read_json_file(dir / "splits_final.json"), Error);
}

// Found by tests/fuzz/dataset_json_fuzz: a label value of 7.8e48 was converted to int64 before
// its range was checked (undefined behaviour, reported by UBSan); now it is an Error.
TEST(Dataset, AHugeLabelValueIsAnErrorNotUndefinedBehaviour) {
  testing::TempDir dir;
  fs::create_directories(dir / "d/imagesTr");
  std::ofstream(dir / "d/dataset.json")
      << R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 7.77778e48}, "file_ending": ".nii.gz"})";
  try {
    load_dataset(dir / "d");
    FAIL() << "expected an Error";
  } catch (const Error& error) {
    EXPECT_NE(error.problem().find("must be an integer"), std::string::npos) << error.what();
  }
}

// Found by tests/fuzz/dataset_json_fuzz: "label_format" holding an object made nlohmann's
// type_error escape load_dataset (and terminate the process).
TEST(Dataset, AFieldOfTheWrongTypeIsAnError) {
  testing::TempDir dir;
  fs::create_directories(dir / "d/imagesTr");
  std::ofstream(dir / "d/dataset.json")
      << R"({"channel_names": {"0": "MR"}, "label_format": {"a": 0, "b": 1}, "numTraining": 0, "file_ending": ".nii.gz"})";
  try {
    load_dataset(dir / "d");
    FAIL() << "expected an Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("dataset.json"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace mlseg
