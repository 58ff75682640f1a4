#include "mlseg/data/cascade_transforms.h"

#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "mlseg/core/error.h"
#include "mlseg/data/connected_components.h"
#include "mlseg/metrics/distance_transform.h"

namespace mlseg {
namespace {

constexpr std::array<double, 3> kVoxelSpacing{1.0, 1.0, 1.0};
constexpr std::size_t kNumBinaryOperators = 4;

/// A mask as contiguous bytes (nonzero: foreground) with its shape.
struct MaskBytes {
  torch::Tensor bytes;  ///< uint8 [Z, Y, X], contiguous; keeps `data` alive
  const std::uint8_t* data = nullptr;
  std::array<std::int64_t, 3> shape_zyx{};
  std::int64_t voxels = 0;
};

MaskBytes mask_bytes(const torch::Tensor& mask, double radius, const char* function) {
  const std::string where = std::string(function) + ": ";
  if (!mask.defined() || mask.dim() != 3 || !mask.device().is_cpu() ||
      (mask.scalar_type() != torch::kBool && mask.scalar_type() != torch::kUInt8)) {
    throw Error(where + "the mask must be a [Z, Y, X] bool or uint8 CPU tensor",
                "pass one channel (mask[c]) as bool, e.g. (prior[c] != 0); a 2-D image as image.unsqueeze(0)");
  }
  if (!std::isfinite(radius) || radius < 0.0) {
    throw Error(where + "the ball radius is " + std::to_string(radius) + " voxels", "pass a finite radius >= 0");
  }
  MaskBytes result;
  // A bool tensor holds one byte 0 / 1 per voxel: the same bytes as uint8.
  result.bytes = mask.scalar_type() == torch::kBool ? mask.contiguous().view(torch::kUInt8) : mask.contiguous();
  result.data = result.bytes.data_ptr<std::uint8_t>();
  result.shape_zyx = {mask.size(0), mask.size(1), mask.size(2)};
  result.voxels = mask.numel();
  return result;
}

/// out[i] = keep(squared distance of voxel i to the nearest feature voxel).
template <typename Keep>
torch::Tensor threshold_distances(const std::uint8_t* features, const MaskBytes& mask, int threads, Keep keep) {
  const std::vector<double> squared = squared_distance_transform(features, mask.shape_zyx, kVoxelSpacing, threads);
  torch::Tensor out = torch::empty({mask.shape_zyx[0], mask.shape_zyx[1], mask.shape_zyx[2]}, torch::kBool);
  bool* data = out.data_ptr<bool>();
  for (std::int64_t i = 0; i < mask.voxels; ++i) data[i] = keep(squared[static_cast<std::size_t>(i)]);
  return out;
}

/// The K channels in a random order (np.random.shuffle), then those that pass a draw with
/// `probability`, in that order (nnU-Net's p_per_label).
std::vector<std::int64_t> draw_channels(std::int64_t channels, double probability, SplitMix64& rng) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(channels));
  for (std::int64_t c = 0; c < channels; ++c) order[static_cast<std::size_t>(c)] = c;
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  std::vector<std::int64_t> drawn;
  for (const std::int64_t c : order) {
    if (rng.uniform() < probability) drawn.push_back(c);
  }
  return drawn;
}

void apply_random_binary_operators(torch::Tensor& priors, const CascadeAugmentationOptions& options, SplitMix64& rng,
                                   CascadeRecord& record) {
  record.operated_channels = draw_channels(priors.size(0), options.binary_operator_probability_per_channel(), rng);
  // batchgeneratorsv2 draws every operator, then every radius.
  for (std::size_t i = 0; i < record.operated_channels.size(); ++i) {
    record.operators.push_back(static_cast<BinaryOperator>(rng.below(kNumBinaryOperators)));
  }
  for (std::size_t i = 0; i < record.operated_channels.size(); ++i) {
    record.structure_radii.push_back(rng.uniform(options.min_structure_radius(), options.max_structure_radius()));
  }
  for (std::size_t i = 0; i < record.operated_channels.size(); ++i) {
    const std::int64_t channel = record.operated_channels[i];
    const torch::Tensor before = priors[channel].ne(0);
    const torch::Tensor after = apply_binary_operator(before, record.operators[i], record.structure_radii[i]);
    if (options.exclusive_priors()) {
      // One-hot classes: a voxel the operator gave to this class leaves every other one.
      const torch::Tensor added = after.logical_and(before.logical_not());
      for (std::int64_t other = 0; other < priors.size(0); ++other) {
        if (other != channel) priors[other].masked_fill_(added, 0.0);
      }
    }
    priors[channel].copy_(after);
  }
}

void remove_random_components(torch::Tensor& priors, const CascadeAugmentationOptions& options, SplitMix64& rng, CascadeRecord& record) {
  record.removal_channels = draw_channels(priors.size(0), options.remove_component_probability_per_channel(), rng);
  const double max_voxels = options.remove_component_max_fraction() * static_cast<double>(priors[0].numel());
  for (const std::int64_t channel : record.removal_channels) {
    std::int64_t removed = 0;
    const torch::Tensor mask = priors[channel].ne(0);
    const ComponentLabels components = label_components(mask);
    std::vector<std::int32_t> small_labels;
    for (std::size_t i = 0; i < components.sizes.size(); ++i) {
      if (static_cast<double>(components.sizes[i]) < max_voxels) small_labels.push_back(static_cast<std::int32_t>(i + 1));
    }
    // Like nnU-Net, no draw when nothing can be removed (an empty channel included).
    if (!small_labels.empty()) {
      const std::int32_t label = small_labels[rng.below(small_labels.size())];
      priors[channel].masked_fill_(components.labels.eq(label), 0.0);
      removed = components.sizes[static_cast<std::size_t>(label - 1)];
    }
    record.removed_component_voxels.push_back(removed);
  }
}

}  // namespace

const char* binary_operator_name(BinaryOperator op) {
  switch (op) {
    case BinaryOperator::dilation:
      return "dilation";
    case BinaryOperator::erosion:
      return "erosion";
    case BinaryOperator::closing:
      return "closing";
    case BinaryOperator::opening:
      return "opening";
  }
  return "unknown";
}

torch::Tensor dilate_ball(const torch::Tensor& mask, double radius, int threads) {
  const MaskBytes bytes = mask_bytes(mask, radius, "dilate_ball");
  const double squared_radius = radius * radius;
  // No foreground: every distance is +infinity, and the result is empty.
  return threshold_distances(bytes.data, bytes, threads, [&](double squared) { return squared <= squared_radius; });
}

torch::Tensor erode_ball(const torch::Tensor& mask, double radius, int threads) {
  const MaskBytes bytes = mask_bytes(mask, radius, "erode_ball");
  std::vector<std::uint8_t> background(static_cast<std::size_t>(bytes.voxels));
  for (std::int64_t i = 0; i < bytes.voxels; ++i) background[static_cast<std::size_t>(i)] = bytes.data[i] == 0;
  const double squared_radius = radius * radius;
  // Background voxels are at distance 0 <= r², so only foreground passes; with no background every
  // distance is +infinity and the mask stays whole.
  return threshold_distances(background.data(), bytes, threads, [&](double squared) { return squared > squared_radius; });
}

torch::Tensor open_ball(const torch::Tensor& mask, double radius, int threads) {
  return dilate_ball(erode_ball(mask, radius, threads), radius, threads);
}

torch::Tensor close_ball(const torch::Tensor& mask, double radius, int threads) {
  return erode_ball(dilate_ball(mask, radius, threads), radius, threads);
}

torch::Tensor apply_binary_operator(const torch::Tensor& mask, BinaryOperator op, double radius, int threads) {
  switch (op) {
    case BinaryOperator::dilation:
      return dilate_ball(mask, radius, threads);
    case BinaryOperator::erosion:
      return erode_ball(mask, radius, threads);
    case BinaryOperator::closing:
      return close_ball(mask, radius, threads);
    case BinaryOperator::opening:
      return open_ball(mask, radius, threads);
  }
  throw Error("apply_binary_operator: unknown operator " + std::to_string(static_cast<int>(op)),
              "pass BinaryOperator::dilation, erosion, closing or opening");
}

void apply_cascade_transforms(torch::Tensor& priors, const CascadeAugmentationOptions& options, SplitMix64& rng, CascadeRecord* record) {
  CascadeRecord local;
  CascadeRecord& r = record != nullptr ? *record : local;
  r = CascadeRecord{};
  if (!priors.defined() || priors.dim() != 4 || priors.scalar_type() != torch::kFloat32 || !priors.device().is_cpu()) {
    throw Error("apply_cascade_transforms: the priors must be a float32 CPU tensor [K, Z, Y, X]",
                "pass the K previous-stage channels of the patch, e.g. image.narrow(0, C, K)");
  }
  if (priors.size(0) == 0) return;
  if (rng.uniform() < options.binary_operator_probability()) {
    r.binary_operator = true;
    apply_random_binary_operators(priors, options, rng, r);
  }
  if (rng.uniform() < options.remove_component_probability()) {
    r.remove_component = true;
    remove_random_components(priors, options, rng, r);
  }
}

}  // namespace mlseg
