#include "mlseg/data/preprocessed_store.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "test_support.h"

namespace mlseg::testing {
namespace fs = std::filesystem;

// Store writers shared by the data tests (declared again in patch_sampler_test.cpp and
// batch_loader_test.cpp): the real writer (`mlseg preprocess`) is built separately.

/// Writes store.json for `case_ids` with channels c0, c1, ... and the matching code layout.
void write_test_store_json(const fs::path& dir, int num_channels, int num_image_channels,
                           const std::vector<std::string>& case_ids, bool has_ignore) {
  StoreInfo info;
  info.dataset = "Dataset999_Test";
  info.configuration = "3d_fullres";
  info.num_image_channels = num_image_channels;
  for (int i = 0; i < num_image_channels; ++i) info.image_channels.push_back("image" + std::to_string(i));
  for (int c = 0; c < num_channels; ++c) info.channel_names.push_back("c" + std::to_string(c));
  const CodeLayout layout = code_layout(num_channels);
  info.num_code_words = layout.num_words;
  info.code_descr = npy_descr(layout.dtype, true);
  info.label_encoding = "sigmoid";
  info.channels_overlap = true;
  info.has_ignore = has_ignore;
  info.spacing_mm = {1, 1, 1};
  info.patch_size = {8, 8, 8};
  info.cases = case_ids;
  fs::create_directories(dir);
  write_json_file(dir / kStoreFile, store_info_to_json(info));
}

/// Writes one case: image [C, Z, Y, X] float32, codes, and every voxel of each channel as its
/// location group (plus one rare combination group per value of `rare_codes`, single-word codes).
void write_test_store_case(const fs::path& dir, const std::string& case_id, const torch::Tensor& image,
                           const CodeVolume& codes, const std::vector<std::uint64_t>& rare_codes) {
  CaseProperties p;
  p.case_id = case_id;
  const auto shape = codes.shape_zyx();
  p.original_shape_zyx = shape;
  p.crop_end = shape;
  p.shape_after_crop = shape;
  p.shape_after_resample = shape;
  p.spacing_after_crop_mm = p.spacing_mm = {1, 1, 1};
  p.channel_voxels = count_channel_voxels(codes);
  std::vector<torch::Tensor> rows;
  std::int64_t offset = 0;
  auto add_group = [&](LocationGroup group, const torch::Tensor& mask) {
    const torch::Tensor where = torch::nonzero(mask).to(torch::kInt);
    group.voxels = group.count = where.size(0);
    group.offset = offset;
    offset += group.count;
    rows.push_back(where);
    p.locations.push_back(std::move(group));
  };
  for (int c = 0; c < codes.num_channels; ++c) {
    LocationGroup group;
    group.kind = "channel";
    group.name = "c" + std::to_string(c);
    group.channel = c;
    add_group(group, channel_mask(codes, c)[0]);
  }
  for (const std::uint64_t code : rare_codes) {
    LocationGroup group;
    group.kind = "combination";
    group.name = "rare" + std::to_string(code);
    group.code_words = {code};
    group.rare = true;
    add_group(group, codes.words[0].to(torch::kLong) == static_cast<std::int64_t>(code));
  }
  const torch::Tensor locations = rows.empty() ? torch::zeros({0, 3}, torch::kInt) : torch::cat(rows).contiguous();
  write_npy(store_image_file(dir, case_id), image.to(torch::kFloat));
  write_npy(store_codes_file(dir, case_id), codes.words, true);
  write_npy(store_locations_file(dir, case_id), locations);
  write_json_file(store_properties_file(dir, case_id), case_properties_to_json(p));
}

}  // namespace mlseg::testing

namespace mlseg {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_test_store_case;
using testing::write_test_store_json;

/// Image = voxel index (+ 1000 per image channel); codes = index % 8 (3 channels, uint8).
struct RampCase {
  torch::Tensor image;
  CodeVolume codes;
  RampCase(std::int64_t z, std::int64_t y, std::int64_t x, int image_channels = 2) {
    const torch::Tensor ramp = torch::arange(z * y * x, torch::kFloat).reshape({1, z, y, x});
    image = torch::cat({ramp, ramp + 1000}).slice(0, 0, image_channels).contiguous();
    codes.num_channels = 3;
    codes.words = (torch::arange(z * y * x, torch::kLong) % 8).to(torch::kUInt8).reshape({1, z, y, x});
  }
};

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no mlseg::Error thrown)";
}

/// A store of `ids`, every case the same ramp (2 image channels in store.json).
void write_ramp_store(const fs::path& dir, const std::vector<std::string>& ids, const RampCase& ramp) {
  write_test_store_json(dir, 3, 2, ids, false);
  for (const auto& id : ids) write_test_store_case(dir, id, ramp.image, ramp.codes, {});
}

/// The error of the first use of case `id` after `corrupt` damaged its files.
std::string first_use_error(const fs::path& dir, const std::string& id, const RampCase& ramp,
                            const std::function<void()>& corrupt) {
  write_ramp_store(dir, {id}, ramp);
  corrupt();
  const PreprocessedStore store(dir);
  return message_of([&] { store.stored_case(0); });
}

TEST(PreprocessedStore, MissingStoreJsonNamesTheFolderAndTheCommand) {
  TempDir dir;
  const std::string message = message_of([&] { PreprocessedStore store(dir / "preprocessed/3d_fullres"); });
  EXPECT_NE(message.find("preprocessed/3d_fullres"), std::string::npos) << message;
  EXPECT_NE(message.find("mlseg preprocess DATASET -c CONFIG"), std::string::npos) << message;
}

TEST(PreprocessedStore, OpensCasesAndReadsPropertiesAndLocations) {
  TempDir dir;
  RampCase ramp(4, 5, 6);
  write_ramp_store(dir.path(), {"a", "b"}, ramp);
  const PreprocessedStore store(dir.path());
  EXPECT_EQ(store.num_cases(), 2u);
  EXPECT_EQ(store.num_channels(), 3);
  EXPECT_EQ(store.case_index("b"), 1u);
  EXPECT_THROW(store.case_index("zzz"), Error);
  const StoredCase& a = store.stored_case(0);
  EXPECT_EQ(a.case_id(), "a");
  EXPECT_EQ(a.shape_zyx(), (std::array<std::int64_t, 3>{4, 5, 6}));
  ASSERT_EQ(a.properties().locations.size(), 3u);
  // Channel 0 (bit 1) is set at every odd index: 60 of 120 voxels.
  const LocationGroup& c0 = a.properties().locations[0];
  EXPECT_EQ(c0.count, 60);
  const auto first = a.location(c0.offset);
  EXPECT_EQ(first, (std::array<std::int64_t, 3>{0, 0, 1}));
  EXPECT_EQ(a.code_word_at(0, {0, 1, 5}), 11u % 8u);
  EXPECT_TRUE(torch::equal(a.image(), ramp.image));
  EXPECT_TRUE(torch::equal(a.codes().words, ramp.codes.words));
  EXPECT_EQ(&store.stored_case(0), &a);  // opened once
}

TEST(PreprocessedStore, ShapeMismatchNamesTheFileAndTheCase) {
  TempDir dir;
  const std::string message = first_use_error(dir.path(), "case_7", RampCase(4, 5, 6), [&] {
    write_npy(store_codes_file(dir.path(), "case_7"), torch::zeros({1, 4, 5, 7}, torch::kUInt8), true);
  });
  EXPECT_NE(message.find("case_7_seg.npy"), std::string::npos) << message;
  EXPECT_NE(message.find("case case_7"), std::string::npos) << message;
  EXPECT_NE(message.find("[1, 4, 5, 7]"), std::string::npos) << message;
}

TEST(PreprocessedStore, ImageChannelsDisagreeingWithStoreJsonAreAnError) {
  TempDir dir;
  // store.json says 2 image channels, the image holds 1.
  const std::string message = first_use_error(dir.path(), "a", RampCase(4, 5, 6, /*image_channels=*/1), [] {});
  EXPECT_NE(message.find("a_img.npy"), std::string::npos) << message;
  EXPECT_NE(message.find("[2, 4, 5, 6]"), std::string::npos) << message;
}

TEST(PreprocessedStore, CodeTypeDisagreeingWithStoreJsonIsAnError) {
  TempDir dir;
  const RampCase ramp(4, 5, 6);
  const std::string message = first_use_error(dir.path(), "a", ramp, [&] {
    write_npy(store_codes_file(dir.path(), "a"), ramp.codes.words.to(torch::kInt16), true);
  });
  EXPECT_NE(message.find("<u2"), std::string::npos) << message;
  EXPECT_NE(message.find("|u1"), std::string::npos) << message;
}

TEST(PreprocessedStore, TruncatedNpyNamesTheFileAndTheCase) {
  TempDir dir;
  const std::string message = first_use_error(dir.path(), "a", RampCase(4, 5, 6), [&] {
    const fs::path image = store_image_file(dir.path(), "a");
    fs::resize_file(image, fs::file_size(image) - 100);
  });
  EXPECT_NE(message.find("a_img.npy"), std::string::npos) << message;
  EXPECT_NE(message.find("case a"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(PreprocessedStore, MissingCaseFileAndBadLocationGroupAreErrors) {
  TempDir dir;
  RampCase ramp(4, 5, 6);
  write_ramp_store(dir.path(), {"a", "b"}, ramp);
  fs::remove(store_locations_file(dir.path(), "a"));
  auto json = read_json_file(store_properties_file(dir.path(), "b"));
  json["locations"][2]["count"] = 100000;
  write_json_file(store_properties_file(dir.path(), "b"), json);
  const PreprocessedStore store(dir.path());
  std::string message = message_of([&] { store.stored_case(0); });
  EXPECT_NE(message.find("a_locations.npy"), std::string::npos) << message;
  message = message_of([&] { store.stored_case(1); });
  EXPECT_NE(message.find("b.json"), std::string::npos) << message;
  EXPECT_NE(message.find("c2"), std::string::npos) << message;
}

TEST(PreprocessedStore, CutPatchInsideCopiesExactValues) {
  TempDir dir;
  RampCase ramp(6, 7, 8);
  write_ramp_store(dir.path(), {"a"}, ramp);
  const PreprocessedStore store(dir.path());
  const CutPatch patch = store.cut_patch(0, {1, 2, 3}, {3, 4, 5});
  EXPECT_EQ(patch.image.sizes(), (std::vector<std::int64_t>{2, 3, 4, 5}));
  EXPECT_TRUE(torch::equal(patch.image, ramp.image.slice(1, 1, 4).slice(2, 2, 6).slice(3, 3, 8)));
  EXPECT_TRUE(torch::equal(patch.codes.words, ramp.codes.words.slice(1, 1, 4).slice(2, 2, 6).slice(3, 3, 8)));
  EXPECT_EQ(patch.codes.num_channels, 3);
  // One value checked by hand: image channel 1 at case voxel (1, 2, 3) = 1000 + (1*7 + 2)*8 + 3.
  EXPECT_EQ(patch.image[1][0][0][0].item<float>(), 1000.0f + 75.0f);
}

TEST(PreprocessedStore, CutPatchAtBordersPadsWithZeroImageAndBackground) {
  TempDir dir;
  RampCase ramp(6, 7, 8);
  write_ramp_store(dir.path(), {"a"}, ramp);
  const PreprocessedStore store(dir.path());
  // Overhangs: z before the start, x past the end, y fully inside.
  const CutPatch patch = store.cut_patch(0, {-2, 1, 5}, {4, 3, 6});
  torch::Tensor expected_image = torch::zeros({2, 4, 3, 6});
  expected_image.slice(1, 2, 4).slice(3, 0, 3).copy_(ramp.image.slice(1, 0, 2).slice(2, 1, 4).slice(3, 5, 8));
  torch::Tensor expected_codes = torch::zeros({1, 4, 3, 6}, torch::kUInt8);
  expected_codes.slice(1, 2, 4).slice(3, 0, 3).copy_(ramp.codes.words.slice(1, 0, 2).slice(2, 1, 4).slice(3, 5, 8));
  EXPECT_TRUE(torch::equal(patch.image, expected_image));
  EXPECT_TRUE(torch::equal(patch.codes.words, expected_codes));
  EXPECT_EQ(patch.image[0][2][0][0].item<float>(), 0.0f * 56 + 1 * 8 + 5);  // case voxel (0, 1, 5)
  // A box entirely outside the case is all padding.
  const CutPatch outside = store.cut_patch(0, {10, 0, 0}, {2, 2, 2});
  EXPECT_EQ(outside.image.abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(outside.codes.words.sum().item<std::int64_t>(), 0);
}

TEST(PreprocessedStore, CutPatchCopiesMultiWordCodes) {
  TempDir dir;
  const int channels = 70;  // 71 bits: two int64 words per voxel
  CodeVolume codes = empty_code_volume({3, 4, 5}, channels);
  codes.words[0].fill_(std::int64_t{1} << 40);
  codes.words[1][1][2][3] = 1 << 5;  // channel 69 at (1, 2, 3)
  codes.words[1][0][0][0] = 1 << 6;  // the ignore flag (bit 70) at (0, 0, 0)
  write_test_store_json(dir.path(), channels, 1, {"wide"}, false);
  write_test_store_case(dir.path(), "wide", torch::ones({1, 3, 4, 5}), codes, {});
  const PreprocessedStore store(dir.path());
  const CutPatch patch = store.cut_patch(0, {1, 1, 1}, {2, 2, 5});
  EXPECT_EQ(patch.codes.words.sizes(), (std::vector<std::int64_t>{2, 2, 2, 5}));
  EXPECT_TRUE(torch::equal(patch.codes.words.slice(3, 0, 4), codes.words.slice(1, 1, 3).slice(2, 1, 3).slice(3, 1, 5)));
  EXPECT_EQ(patch.codes.words[1][0][1][2].item<std::int64_t>(), 1 << 5);  // case voxel (1, 2, 3)
  EXPECT_EQ(patch.codes.words[0][0][0][0].item<std::int64_t>(), std::int64_t{1} << 40);
  EXPECT_EQ(patch.codes.words.select(3, 4).abs().sum().item<std::int64_t>(), 0);  // x = 5 is past the end
  EXPECT_FALSE(store.stored_case(0).is_ignored({1, 2, 3}));
  EXPECT_TRUE(store.stored_case(0).is_ignored({0, 0, 0}));
}

TEST(PreprocessedStore, ConcurrentFirstUseOpensEachCaseOnce) {
  TempDir dir;
  RampCase ramp(4, 5, 6);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back("case_" + std::to_string(i));
  write_ramp_store(dir.path(), ids, ramp);
  const PreprocessedStore store(dir.path());
  std::vector<std::vector<const StoredCase*>> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < ids.size(); ++i) seen[t].push_back(&store.stored_case((i + t) % ids.size()));
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) {
    for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(seen[t][i], &store.stored_case((i + t) % ids.size()));
  }
}

}  // namespace
}  // namespace mlseg
