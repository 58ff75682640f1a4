#include "mlseg/planning/network_topology.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "mlseg/core/error.h"

namespace mlseg {

NetworkTopology pool_and_conv_topology(const std::vector<double>& spacing, const std::vector<double>& patch_size,
                                       int min_edge) {
  const std::size_t dim = spacing.size();
  std::vector<double> current_spacing = spacing, current_size = patch_size;
  NetworkTopology topology;
  topology.pools_per_axis.assign(dim, 0);
  topology.strides.push_back(std::vector<int>(dim, 1));
  std::vector<int> kernel(dim, 1);
  while (true) {
    std::vector<std::size_t> valid;
    for (std::size_t i = 0; i < dim; ++i) {
      if (current_size[i] >= 2.0 * min_edge) valid.push_back(i);
    }
    if (valid.empty()) break;
    double min_valid_spacing = INFINITY;
    for (std::size_t i : valid) min_valid_spacing = std::min(min_valid_spacing, current_spacing[i]);
    valid.erase(std::remove_if(valid.begin(), valid.end(),
                               [&](std::size_t i) { return current_spacing[i] / min_valid_spacing >= 2.0; }),
                valid.end());
    if (valid.size() == 1 && current_size[valid[0]] < 3.0 * min_edge) break;
    if (valid.empty()) break;
    const double min_spacing = *std::min_element(current_spacing.begin(), current_spacing.end());
    for (std::size_t d = 0; d < dim; ++d) {
      if (kernel[d] != 3 && current_spacing[d] / min_spacing < 2.0) kernel[d] = 3;
    }
    std::vector<int> stride(dim, 1);
    for (std::size_t v : valid) {
      stride[v] = 2;
      topology.pools_per_axis[v] += 1;
      current_spacing[v] *= 2;
      current_size[v] = std::ceil(current_size[v] / 2);
    }
    topology.strides.push_back(stride);
    topology.kernel_sizes.push_back(kernel);
  }
  topology.kernel_sizes.push_back(std::vector<int>(dim, 3));  // bottleneck
  for (std::size_t i = 0; i < dim; ++i) {
    const std::int64_t divisor = std::int64_t{1} << topology.pools_per_axis[i];
    topology.divisible_by.push_back(divisor);
    // nnU-Net's pad_shape: the next multiple of the divisor (a multiple stays).
    topology.patch_size.push_back(static_cast<std::int64_t>(std::ceil(patch_size[i] / static_cast<double>(divisor))) * divisor);
  }
  return topology;
}

std::vector<int> features_per_stage(int num_stages, int base_features, int max_features) {
  std::vector<int> features;
  for (int s = 0; s < num_stages; ++s) {
    features.push_back(static_cast<int>(std::min<std::int64_t>(max_features, std::int64_t{base_features} << std::min(s, 30))));
  }
  return features;
}

namespace {

/// Each stage's output size (the input size after that stage's stride, floor division as nnU-Net).
std::vector<std::vector<std::int64_t>> stage_sizes(const NetworkTopology& topology) {
  std::vector<std::vector<std::int64_t>> sizes;
  std::vector<std::int64_t> size = topology.patch_size;
  for (int s = 0; s < topology.num_stages(); ++s) {
    for (std::size_t i = 0; i < size.size(); ++i) size[i] /= topology.strides[s][i];
    sizes.push_back(size);
  }
  return sizes;
}

double voxels_of(const std::vector<std::int64_t>& size) {
  double v = 1;
  for (std::int64_t s : size) v *= static_cast<double>(s);
  return v;
}

/// The UNetDecoder's share: per skip level (all but the bottleneck) its convs and the transposed
/// conv into it, and the full-resolution segmentation head (no deep supervision).
double decoder_feature_map_size(const std::vector<std::vector<std::int64_t>>& sizes, const std::vector<int>& features,
                                int decoder_convs, int output_channels) {
  double total = 0;
  for (std::size_t s = 0; s + 1 < sizes.size(); ++s) total += (decoder_convs + 1.0) * features[s] * voxels_of(sizes[s]);
  if (sizes.size() > 1) total += output_channels * voxels_of(sizes[0]);
  return total;
}

}  // namespace

double conv_feature_map_size(const NetworkTopology& topology, const std::vector<int>& features, int convs_per_stage,
                             int output_channels) {
  const auto sizes = stage_sizes(topology);
  double total = 0;
  for (std::size_t s = 0; s < sizes.size(); ++s) total += convs_per_stage * features[s] * voxels_of(sizes[s]);
  return total + decoder_feature_map_size(sizes, features, convs_per_stage, output_channels);
}

double residual_conv_feature_map_size(const NetworkTopology& topology, const std::vector<int>& features,
                                      const std::vector<int>& blocks_per_stage, int decoder_convs, int output_channels) {
  const int stages = topology.num_stages();
  if (static_cast<int>(blocks_per_stage.size()) < stages || static_cast<int>(features.size()) < stages) {
    throw Error("the residual planner has blocks or features for " + std::to_string(blocks_per_stage.size()) + " stages, the topology " +
                    std::to_string(stages),
                "give one block count per stage");
  }
  const auto sizes = stage_sizes(topology);
  double total = features[0] * voxels_of(topology.patch_size);  // the stem
  std::vector<std::int64_t> before = topology.patch_size;
  std::int64_t channels = features[0];
  for (int s = 0; s < stages; ++s) {
    const double v = voxels_of(sizes[s]);
    total += 2.0 * blocks_per_stage[s] * features[s] * v;
    if (channels != features[s] || sizes[s] != before) total += features[s] * v;  // the first block's skip projection
    before = sizes[s];
    channels = features[s];
  }
  return total + decoder_feature_map_size(sizes, features, decoder_convs, output_channels);
}

}  // namespace mlseg
