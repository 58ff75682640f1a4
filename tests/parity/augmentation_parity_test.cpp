// Parity (d): what mlseg's default augmentation (nnU-Net's) draws, per transform, against
// nnUNetTrainer.get_training_transforms (batchgeneratorsv2) over 2,000 draws each: how often each
// transform happens and the distribution of what it drew (rotation angles, scale, noise sigma,
// blur sigmas, brightness and contrast factors, low-resolution zoom, gammas), and per-axis
// mirroring; and that labels are preserved (every output label/code value occurs in the input).
// Peer: tests/parity/peer/augmentation.py (records nnU-Net's own get_parameters calls).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <map>
#include <set>

#include "mlseg/data/augmentation.h"
#include "mlseg/data/spatial_transform.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

constexpr int kDraws = 2000;
constexpr double kStandardErrors = 5.0;

struct Quantity {
  int count = 0;
  std::vector<double> values;
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return v.empty() ? 0 : std::sqrt(s / static_cast<double>(v.size()));
}

double quantile_of(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double position = q * static_cast<double>(v.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const auto above = std::min(below + 1, v.size() - 1);
  return v[below] + (position - static_cast<double>(below)) * (v[above] - v[below]);
}

TEST(ParityAugmentation, DefaultTransformsDrawLikeNnUNetTrainingTransforms) {
  MLSEG_REQUIRE_PEER();
  testing::TempDir tmp;
  const auto peer = parity::run_peer("augmentation.py", {(tmp / "peer").string(), std::to_string(kDraws)}, tmp / "peer");
  EXPECT_TRUE(peer.meta["labels_preserved"].get<bool>()) << "nnU-Net's own transforms changed a label value";

  const std::array<std::int64_t, 3> patch{32, 32, 32};
  AugmentationOptions options;  // the defaults: nnU-Net's
  // Labels as classes (softmax), as nnU-Net's label maps: every output code must be an input code.
  options.spatial().label_interpolation(LabelInterpolation::classes);
  const auto initial = initial_patch_size(patch, options.spatial());
  const auto their_initial = peer.meta["initial_patch_size"].get<std::vector<std::int64_t>>();
  EXPECT_EQ(std::vector<std::int64_t>(initial.begin(), initial.end()), their_initial)
      << "configure_rotation_dummyDA_mirroring_and_inital_patch_size";

  torch::manual_seed(5);
  const auto image = torch::randn({2, initial[0], initial[1], initial[2]});
  // Nested blobs: codes 0, 1, 3, 7 (a lesion in a core in an organ).
  auto field = torch::randn({1, 1, initial[0], initial[1], initial[2]});
  for (int i = 0; i < 3; ++i) field = torch::avg_pool3d(field, 5, 1, 2);
  field = field.squeeze(0);
  auto words = torch::zeros({1, initial[0], initial[1], initial[2]}, torch::kUInt8);
  const auto sorted = std::get<0>(field.flatten().sort());
  const auto n = sorted.numel();
  const double q55 = sorted[n * 55 / 100].item<double>(), q75 = sorted[n * 75 / 100].item<double>(),
               q90 = sorted[n * 90 / 100].item<double>();
  words.masked_fill_(field > q55, 1);
  words.masked_fill_(field > q75, 3);
  words.masked_fill_(field > q90, 7);
  const CodeVolume codes{words, 3};
  const std::set<int> input_codes{0, 1, 3, 7};

  std::map<std::string, Quantity> ours;
  bool preserved = true;
  for (int i = 0; i < kDraws; ++i) {
    const AugmentedSample sample = augment_sample(image, codes, patch, options, static_cast<std::uint64_t>(1000 + i));
    const auto& r = sample.record;
    if (r.spatial.rotated) {
      ++ours["rotation"].count;
      for (double a : r.spatial.angles_rad) ours["rotation"].values.push_back(a);
    }
    if (r.spatial.scaled) {
      ++ours["scaling"].count;
      ours["scaling"].values.push_back(r.spatial.scale);
    }
    const auto& in = r.intensity;
    auto record = [&](const char* name, bool happened, const std::vector<double>& values) {
      if (!happened) return;
      ++ours[name].count;
      ours[name].values.insert(ours[name].values.end(), values.begin(), values.end());
    };
    record("noise", in.noise, {in.noise_sigma});
    std::vector<double> blur_sigmas;
    for (const auto& s : in.blur_sigmas_zyx) blur_sigmas.insert(blur_sigmas.end(), s.begin(), s.end());
    record("blur", in.blur && !in.blurred_channels.empty(), blur_sigmas);
    record("brightness", in.brightness, in.brightness_factors);
    record("contrast", in.contrast, in.contrast_factors);
    record("low_resolution", in.low_resolution && !in.low_resolution_channels.empty(), in.low_resolution_zooms);
    record("inverted_gamma", in.inverted_gamma, in.inverted_gammas);
    record("gamma", in.gamma, in.gammas);
    const char* mirror_names[3] = {"mirror_z", "mirror_y", "mirror_x"};
    for (int a = 0; a < 3; ++a) {
      if (r.mirrored_zyx[a]) ++ours[mirror_names[a]].count;
    }
    const auto values = std::get<0>(at::_unique(sample.codes.words.to(torch::kInt64)));
    for (std::int64_t k = 0; k < values.numel(); ++k) preserved &= input_codes.count(static_cast<int>(values[k].item<std::int64_t>())) > 0;
  }
  EXPECT_TRUE(preserved) << "mlseg's augmentation produced a code that is not in the input";

  SCOPED_TRACE("nnUNetTrainer.get_training_transforms");
  for (const auto& [name, theirs] : peer.meta["quantities"].items()) {
    const Quantity& q = ours[name];
    const double their_rate = theirs["rate"].get<double>(), rate = q.count / double(kDraws);
    const double p = (their_rate + rate) / 2, rate_error = std::sqrt(std::max(p * (1 - p), 1e-4) * 2 / kDraws);
    EXPECT_NEAR(rate, their_rate, kStandardErrors * rate_error) << name << ": share of draws";
    std::cout << "[parity] " << name << ": happens in " << rate << " of draws (nnU-Net " << their_rate << ")";
    const auto& v = theirs["values"];
    if (v["n"].get<int>() > 0) {
      ASSERT_FALSE(q.values.empty()) << name;
      const double m = mean_of(q.values), s = std_of(q.values);
      const double their_mean = v["mean"].get<double>(), their_std = v["std"].get<double>();
      const double n1 = static_cast<double>(q.values.size()), n2 = v["n"].get<double>();
      const double mean_error = std::sqrt(s * s / n1 + their_std * their_std / n2);
      EXPECT_NEAR(m, their_mean, kStandardErrors * mean_error) << name << ": mean of the drawn values";
      EXPECT_NEAR(s, their_std, 0.15 * their_std + 1e-9) << name << ": spread of the drawn values";
      for (const char* key : {"q10", "q50", "q90"}) {
        const double qv = quantile_of(q.values, key[1] == '1' ? 0.1 : key[1] == '5' ? 0.5 : 0.9);
        EXPECT_NEAR(qv, v[key].get<double>(), 2 * kStandardErrors * mean_error + 1e-9) << name << ": " << key;
      }
      EXPECT_GE(*std::min_element(q.values.begin(), q.values.end()), v["min"].get<double>() - 0.05 * (v["max"].get<double>() - v["min"].get<double>()))
          << name << ": smallest value";
      EXPECT_LE(*std::max_element(q.values.begin(), q.values.end()), v["max"].get<double>() + 0.05 * (v["max"].get<double>() - v["min"].get<double>()))
          << name << ": largest value";
      std::cout << "; values mean " << m << " sd " << s << " (nnU-Net " << their_mean << ", " << their_std << ")";
    }
    std::cout << "\n";
  }
}

}  // namespace
}  // namespace mlseg
