// LabelEncoding: training targets from codes for every encoding, and the way back from network
// outputs to codes (the powerset round trip codes → class → codes, past 64 channels too).
#include "mlseg/labels/label_encoding.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

// A 1 x 1 x 5 code row with 3 channels: background, ch0, ch0+ch1 (or ch1), ignore, ch2.
CodeVolume small_codes(bool overlap) {
  CodeVolume codes = empty_code_volume({1, 1, 5}, 3);
  const std::vector<int> values{0, 0b0001, overlap ? 0b0011 : 0b0010, 0b1000, 0b0100};
  for (int x = 0; x < 5; ++x) codes.words[0][0][0][x] = values[static_cast<std::size_t>(x)];
  return codes;
}

TEST(LabelEncodingTarget, SigmoidGivesOneBinaryChannelPerChannelAndAnAnnotatedMask) {
  const auto target = LabelEncoding::sigmoid(3).training_target(small_codes(true));
  ASSERT_EQ(target.target.sizes(), (std::vector<std::int64_t>{3, 1, 1, 5}));
  EXPECT_EQ(target.target.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(target.target.flatten(1),
                           torch::tensor({0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, torch::kFloat32).view({3, 5})));
  EXPECT_TRUE(torch::equal(target.annotated.flatten(), torch::tensor({1, 1, 1, 0, 1}, torch::kFloat32)));
  EXPECT_TRUE(target.has_ignored_voxels);
}

TEST(LabelEncodingTarget, SoftmaxGivesClassIndicesAndTheIgnoreIndex) {
  const auto target = LabelEncoding::softmax(3).training_target(small_codes(false));
  ASSERT_EQ(target.target.sizes(), (std::vector<std::int64_t>{1, 1, 1, 5}));
  EXPECT_TRUE(torch::equal(target.target.flatten(), torch::tensor(std::vector<std::int64_t>{0, 1, 2, kIgnoreClassIndex, 3})));
}

TEST(LabelEncodingTarget, SoftmaxRejectsOverlappingChannels) {
  try {
    LabelEncoding::softmax(3).training_target(small_codes(true));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.problem()).find("overlapping channels 0 and 1"), std::string::npos) << error.problem();
    EXPECT_NE(error.fix().find("powerset"), std::string::npos);
  }
}

TEST(LabelEncodingTarget, PowersetGivesTheCombinationsClassAndMapsUnlistedCodesToTheirLargestSubset) {
  // Classes: 0 background, 1 {ch0}, 2 {ch0, ch1}, 3 {ch2}.
  const LabelEncoding encoding = LabelEncoding::powerset(3, {{0b001}, {0b011}, {0b100}});
  EXPECT_EQ(encoding.num_outputs(), 4);
  EXPECT_EQ(encoding.loss_kind(), LossKind::ce_and_marginal_dice);
  EXPECT_EQ(encoding.label_resampling(), LabelResampling::most_likely_combination);
  const auto target = encoding.training_target(small_codes(true));
  EXPECT_TRUE(torch::equal(target.target.flatten(), torch::tensor(std::vector<std::int64_t>{0, 1, 2, kIgnoreClassIndex, 3})));
  // {ch0, ch1, ch2} is not a class: its largest listed subset {ch0, ch1} is; {ch1} alone has only background.
  EXPECT_EQ(encoding.class_of({0b111}), 2);
  EXPECT_EQ(encoding.class_of({0b010}), 0);
  EXPECT_EQ(encoding.class_of({0b101}), 1);  // {ch0} and {ch2} tie at one bit: the earlier class
  EXPECT_THROW(LabelEncoding::powerset(3, {{0b001}, {0b001}}), Error);  // listed twice
  EXPECT_THROW(LabelEncoding::powerset(3, {{0b1000}}), Error);          // beyond the channels
}

TEST(LabelEncodingTarget, MultiWordCodesReachEveryChannel) {
  CodeVolume codes = empty_code_volume({1, 2, 2}, 70);  // 2 int64 words per voxel
  ASSERT_EQ(codes.words.size(0), 2);
  codes.words[0][0][0][1] = std::int64_t{1} << 63;  // channel 63
  codes.words[1][0][1][0] = std::int64_t{1} << 5;   // channel 69
  codes.words[1][0][1][1] = std::int64_t{1} << 6;   // ignore flag (bit 70)
  const auto target = LabelEncoding::sigmoid(70).training_target(codes);
  EXPECT_EQ(target.target.sum().item<double>(), 2.0);
  EXPECT_EQ(target.target[63][0][0][1].item<float>(), 1.0f);
  EXPECT_EQ(target.target[69][0][1][0].item<float>(), 1.0f);
  EXPECT_EQ(target.annotated[0][0][1][1].item<float>(), 0.0f);
  EXPECT_EQ(parse_encoding_kind("powerset", "test"), EncodingKind::powerset);
  EXPECT_THROW(parse_encoding_kind("onehot", "test"), Error);
}

// Random combinations of `channels` channels, each voxel one of them: the target's classes,
// one-hot as logits, decode to exactly the same codes.
void expect_powerset_round_trip(int channels, std::uint32_t seed) {
  std::mt19937_64 random(seed);
  const int words = (channels + 64) / 64;
  std::vector<CombinationCode> combinations;
  while (combinations.size() < 12) {
    CombinationCode code(static_cast<std::size_t>(words), 0);
    for (int c = 0; c < channels; ++c) {
      if (random() % 5 == 0) code[c / 64] |= std::uint64_t{1} << (c % 64);
    }
    bool empty = true;
    for (auto w : code) empty = empty && w == 0;
    if (!empty && std::find(combinations.begin(), combinations.end(), code) == combinations.end()) combinations.push_back(code);
  }
  const LabelEncoding encoding = LabelEncoding::powerset(channels, combinations);
  CodeVolume codes = empty_code_volume({2, 3, 4}, channels);
  ASSERT_EQ(codes.words.size(0), words);
  const CodeLayout layout = code_layout(channels);
  for (std::int64_t i = 0; i < 24; ++i) {
    const std::size_t k = random() % (combinations.size() + 1);  // 0: background
    for (int w = 0; w < words; ++w) {
      const std::uint64_t word = k == 0 ? 0 : combinations[k - 1][static_cast<std::size_t>(w)];
      codes.words[w].view({-1})[i] = static_cast<std::int64_t>(word);
    }
  }
  codes.words = codes.words.to(layout.dtype);
  const TrainingTarget target = encoding.training_target(codes);
  const torch::Tensor classes = target.target[0];
  const torch::Tensor logits = torch::one_hot(classes, encoding.num_outputs()).permute({3, 0, 1, 2}).to(torch::kFloat) * 10;
  const CodeVolume decoded = encoding.code_from_outputs(logits, /*are_logits=*/true);
  EXPECT_TRUE(torch::equal(decoded.words.to(torch::kLong), codes.words.to(torch::kLong))) << channels << " channels";
  // Channel masks from the same logits ([B, K, ...]) equal the decoded codes channel by channel.
  const torch::Tensor masks = encoding.channel_masks_from_logits(logits.unsqueeze(0))[0];
  for (int c = 0; c < channels; ++c) {
    const torch::Tensor bit = decoded.words[c / 64].to(torch::kLong).bitwise_and(std::int64_t{1} << (c % 64)).ne(0);
    ASSERT_TRUE(torch::equal(masks[c].to(torch::kBool), bit)) << "channel " << c;
  }
}

TEST(LabelEncodingPowerset, RoundTripCodesClassCodes) {
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    expect_powerset_round_trip(6, seed);     // uint8 codes
    expect_powerset_round_trip(20, seed);    // 32-bit codes
    expect_powerset_round_trip(63, seed);    // one full 64-bit word (bit 63 is the ignore flag)
    expect_powerset_round_trip(100, seed);   // two words
    expect_powerset_round_trip(130, seed);   // three words
  }
}

TEST(LabelEncodingPowerset, MarginalsSumTheCombinationsThatHoldTheChannel) {
  const LabelEncoding encoding = LabelEncoding::powerset(2, {{0b01}, {0b11}});  // bg, {a}, {a, b}
  const torch::Tensor probabilities = torch::tensor({0.5f, 0.2f, 0.3f}).view({3, 1, 1, 1});
  const torch::Tensor marginals = encoding.channel_probabilities(probabilities, 0);
  ASSERT_EQ(marginals.sizes(), (std::vector<std::int64_t>{2, 1, 1, 1}));
  EXPECT_NEAR(marginals[0].item<float>(), 0.5f, 1e-6);  // a: {a} + {a, b}
  EXPECT_NEAR(marginals[1].item<float>(), 0.3f, 1e-6);  // b: {a, b}
  EXPECT_EQ(encoding.outside_value(0), 1.0);
  EXPECT_EQ(encoding.outside_value(1), 0.0);
  EXPECT_EQ(encoding.default_export(), DefaultExport::channel_code);
  EXPECT_EQ(LabelEncoding::softmax(2).default_export(), DefaultExport::label_map);
}

TEST(LabelEncodingJson, PowersetTableIsWrittenByChannelNameAndReadBack) {
  const std::vector<std::string> names{"organ", "lesion", "vessel"};
  const LabelEncoding encoding = LabelEncoding::powerset(3, {{0b011}, {0b001}, {0b100}});
  Json json;
  encoding.write_json(json, names);
  EXPECT_EQ(json["label_encoding"], "powerset");
  EXPECT_EQ(json["powerset_combinations"].dump(), R"([[],["organ","lesion"],["organ"],["vessel"]])");
  const LabelEncoding read = LabelEncoding::from_json(json, names, "plans.json");
  EXPECT_EQ(read.combinations(), encoding.combinations());
  json["powerset_combinations"][1] = {"organ", "tumour"};
  try {
    LabelEncoding::from_json(json, names, "plans.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.problem()).find("\"tumour\""), std::string::npos) << e.problem();
  }
  json.erase("powerset_combinations");
  EXPECT_THROW(LabelEncoding::from_json(json, names, "plans.json"), Error);
  EXPECT_EQ(LabelEncoding::from_json(Json::object(), names, "old plans").kind(), EncodingKind::sigmoid);
}

}  // namespace
}  // namespace mlseg
