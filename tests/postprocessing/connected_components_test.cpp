// Connected components with full connectivity (26 in 3D, 8 in a one-slice image), against
// hand-made volumes and a breadth-first flood fill on random masks; every volume is also labelled
// in z-slabs of every size, which must not change a label.
#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <string>
#include <vector>

#include "mlseg/core/error.h"
#include "mlseg/core/random.h"
#include "mlseg/data/connected_components.h"

namespace mlseg {
namespace {

using Interval = std::array<std::int64_t, 2>;  // [begin, end)

torch::Tensor empty_mask(std::int64_t z, std::int64_t y, std::int64_t x) { return torch::zeros({z, y, x}, torch::kBool); }

void fill_box(torch::Tensor& mask, Interval z, Interval y, Interval x) {
  mask.slice(0, z[0], z[1]).slice(1, y[0], y[1]).slice(2, x[0], x[1]).fill_(true);
}

void set_voxel(torch::Tensor& mask, std::int64_t z, std::int64_t y, std::int64_t x) { mask[z][y][x] = true; }

// label_components, checked against the same volume cut into 1..Z slabs on two threads.
ComponentLabels label_every_way(const torch::Tensor& mask) {
  ComponentLabels result = label_components(mask);
  EXPECT_EQ(result.labels.scalar_type(), torch::kInt32);
  EXPECT_EQ(result.labels.sizes(), mask.sizes());
  for (std::int64_t slabs = 1; slabs <= mask.size(0); ++slabs) {
    const ComponentLabels in_slabs = detail::label_components_in_slabs(mask, slabs, 2);
    EXPECT_TRUE(torch::equal(in_slabs.labels, result.labels)) << slabs << " slabs";
    EXPECT_EQ(in_slabs.sizes, result.sizes) << slabs << " slabs";
  }
  return result;
}

std::vector<std::int64_t> sizes_of(const ComponentLabels& labels) { return labels.sizes; }

std::int32_t label_at(const ComponentLabels& labels, std::int64_t z, std::int64_t y, std::int64_t x) {
  return labels.labels[z][y][x].item<std::int32_t>();
}

TEST(ConnectedComponents, TouchingCubesAreOneComponent) {
  torch::Tensor mask = empty_mask(6, 6, 8);
  fill_box(mask, {1, 3}, {1, 3}, {1, 3});
  fill_box(mask, {1, 3}, {1, 3}, {3, 5});  // shares the face x = 2 | 3
  const ComponentLabels result = label_every_way(mask);
  EXPECT_EQ(sizes_of(result), (std::vector<std::int64_t>{16}));
  EXPECT_TRUE(torch::equal(result.labels, mask.to(torch::kInt32)));
}

TEST(ConnectedComponents, CubesOneEmptyVoxelApartAreTwo) {
  torch::Tensor mask = empty_mask(6, 6, 8);
  fill_box(mask, {1, 3}, {1, 3}, {1, 3});
  fill_box(mask, {1, 3}, {1, 3}, {4, 6});  // x = 3 is empty between them
  const ComponentLabels result = label_every_way(mask);
  EXPECT_EQ(sizes_of(result), (std::vector<std::int64_t>{8, 8}));
  EXPECT_EQ(label_at(result, 1, 1, 1), 1);
  EXPECT_EQ(label_at(result, 2, 2, 5), 2);
  EXPECT_EQ(label_at(result, 1, 1, 3), 0);
}

TEST(ConnectedComponents, EdgeNeighboursAreConnected) {
  // Pairs that share only an edge: in the y-x plane, the z-y plane, the z-x plane.
  for (const std::array<std::int64_t, 3>& second : {std::array<std::int64_t, 3>{1, 2, 2}, {2, 2, 1}, {2, 1, 2}, {2, 1, 0}}) {
    torch::Tensor mask = empty_mask(4, 4, 4);
    set_voxel(mask, 1, 1, 1);
    set_voxel(mask, second[0], second[1], second[2]);
    EXPECT_EQ(sizes_of(label_every_way(mask)), (std::vector<std::int64_t>{2}))
        << second[0] << "," << second[1] << "," << second[2];
  }
}

TEST(ConnectedComponents, CornerNeighboursAreConnected) {
  // Every one of the 8 voxels that share only a corner with (2, 2, 2), one at a time: each needs a
  // different earlier row ((z-1, y-1) or (z-1, y+1)) and x side.
  for (std::int64_t dz : {-1, 1}) {
    for (std::int64_t dy : {-1, 1}) {
      for (std::int64_t dx : {-1, 1}) {
        torch::Tensor mask = empty_mask(5, 5, 5);
        set_voxel(mask, 2, 2, 2);
        set_voxel(mask, 2 + dz, 2 + dy, 2 + dx);
        EXPECT_EQ(sizes_of(label_every_way(mask)), (std::vector<std::int64_t>{2})) << dz << "," << dy << "," << dx;
      }
    }
  }
  // Two voxels apart along a diagonal: not neighbours.
  torch::Tensor mask = empty_mask(5, 5, 5);
  set_voxel(mask, 0, 0, 0);
  set_voxel(mask, 2, 2, 2);
  EXPECT_EQ(sizes_of(label_every_way(mask)), (std::vector<std::int64_t>{1, 1}));
}

TEST(ConnectedComponents, OneSliceImageIsEightConnected) {
  torch::Tensor image = empty_mask(1, 5, 5);
  set_voxel(image, 0, 0, 0);
  set_voxel(image, 0, 1, 1);  // corner of (0, 0)
  set_voxel(image, 0, 2, 0);  // corner of (1, 1), to the lower left
  set_voxel(image, 0, 4, 4);  // two pixels away from everything
  const ComponentLabels result = label_every_way(image);
  EXPECT_EQ(sizes_of(result), (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(label_at(result, 0, 2, 0), 1);
  EXPECT_EQ(label_at(result, 0, 4, 4), 2);
}

TEST(ConnectedComponents, HollowShellAndTheBlobInsideAreTwo) {
  torch::Tensor mask = empty_mask(11, 11, 11);
  fill_box(mask, {1, 10}, {1, 10}, {1, 10});
  mask.slice(0, 2, 9).slice(1, 2, 9).slice(2, 2, 9).fill_(false);  // a one-voxel shell
  fill_box(mask, {4, 7}, {4, 7}, {4, 7});  // two empty voxels from the shell on every side
  const ComponentLabels result = label_every_way(mask);
  EXPECT_EQ(sizes_of(result), (std::vector<std::int64_t>{9 * 9 * 9 - 7 * 7 * 7, 27}));
  EXPECT_EQ(label_at(result, 1, 1, 1), 1);
  EXPECT_EQ(label_at(result, 5, 5, 5), 2);
  EXPECT_EQ(label_at(result, 3, 5, 5), 0);
}

TEST(ConnectedComponents, UShapeJoinedLateKeepsConsecutiveLabels) {
  // Rows 0-5: two arms and, between them, a dot that is met before the arms join in row 6; a bar
  // in row 8 comes after. Labels follow first voxels: U 1, dot 2, bar 3 (no gap left by the merge).
  torch::Tensor image = empty_mask(1, 10, 9);
  fill_box(image, {0, 1}, {0, 7}, {1, 2});
  fill_box(image, {0, 1}, {0, 7}, {6, 7});
  fill_box(image, {0, 1}, {6, 7}, {1, 7});
  set_voxel(image, 0, 0, 4);
  fill_box(image, {0, 1}, {8, 9}, {0, 9});
  const ComponentLabels result = label_every_way(image);
  EXPECT_EQ(sizes_of(result), (std::vector<std::int64_t>{7 + 7 + 4, 1, 9}));
  EXPECT_EQ(label_at(result, 0, 0, 6), 1);
  EXPECT_EQ(label_at(result, 0, 0, 4), 2);
  EXPECT_EQ(label_at(result, 0, 8, 0), 3);

  // The same in depth: the arms meet only in the last slice, a slab border when cut in slabs.
  torch::Tensor volume = empty_mask(5, 4, 9);
  fill_box(volume, {0, 5}, {1, 2}, {1, 2});
  fill_box(volume, {0, 5}, {1, 2}, {6, 7});
  set_voxel(volume, 0, 0, 4);
  fill_box(volume, {4, 5}, {1, 2}, {1, 7});
  const ComponentLabels deep = label_every_way(volume);
  EXPECT_EQ(sizes_of(deep), (std::vector<std::int64_t>{1, 5 + 5 + 4}));
  EXPECT_EQ(label_at(deep, 0, 1, 6), 2);
  EXPECT_EQ(label_at(deep, 4, 1, 3), 2);
}

TEST(ConnectedComponents, EmptyAndFullVolumes) {
  const torch::Tensor empty = empty_mask(3, 4, 17);
  const ComponentLabels none = label_every_way(empty);
  EXPECT_TRUE(none.sizes.empty());
  EXPECT_EQ(none.labels.count_nonzero().item<std::int64_t>(), 0);
  EXPECT_EQ(keep_largest_component(empty).count_nonzero().item<std::int64_t>(), 0);
  EXPECT_EQ(remove_small_components(empty, 1).count_nonzero().item<std::int64_t>(), 0);

  const torch::Tensor full = torch::ones({3, 4, 17}, torch::kBool);
  const ComponentLabels one = label_every_way(full);
  EXPECT_EQ(sizes_of(one), (std::vector<std::int64_t>{3 * 4 * 17}));
  EXPECT_TRUE(torch::equal(one.labels, torch::ones({3, 4, 17}, torch::kInt32)));
  EXPECT_TRUE(torch::equal(keep_largest_component(full), full));

  const ComponentLabels no_voxels = label_components(empty_mask(0, 4, 4));
  EXPECT_EQ(no_voxels.labels.sizes(), (std::vector<std::int64_t>{0, 4, 4}));
  EXPECT_TRUE(no_voxels.sizes.empty());
}

TEST(ConnectedComponents, KeepLargestAndItsTies) {
  torch::Tensor mask = empty_mask(8, 8, 12);
  fill_box(mask, {0, 2}, {0, 2}, {0, 2});    // 8 voxels, first in scan order
  fill_box(mask, {0, 2}, {0, 2}, {4, 6});    // 8 voxels
  torch::Tensor expected = empty_mask(8, 8, 12);
  fill_box(expected, {0, 2}, {0, 2}, {0, 2});
  const torch::Tensor tie = keep_largest_component(mask);
  EXPECT_EQ(tie.scalar_type(), torch::kBool);
  EXPECT_TRUE(torch::equal(tie, expected));

  fill_box(mask, {5, 8}, {5, 8}, {8, 11});   // 27 voxels, last in scan order
  expected = empty_mask(8, 8, 12);
  fill_box(expected, {5, 8}, {5, 8}, {8, 11});
  EXPECT_TRUE(torch::equal(keep_largest_component(mask), expected));
}

TEST(ConnectedComponents, RemoveSmallBelowEqualAndAboveTheThreshold) {
  torch::Tensor mask = empty_mask(8, 8, 12);
  set_voxel(mask, 0, 0, 0);                  // 1 voxel
  fill_box(mask, {2, 4}, {2, 4}, {0, 2});    // 8 voxels
  fill_box(mask, {4, 7}, {4, 7}, {6, 9});    // 27 voxels
  const auto count = [](const torch::Tensor& kept) { return kept.count_nonzero().item<std::int64_t>(); };
  EXPECT_EQ(count(remove_small_components(mask, 0)), 36);
  EXPECT_EQ(count(remove_small_components(mask, 1)), 36);
  EXPECT_EQ(count(remove_small_components(mask, 7)), 35);   // 8 is above the threshold
  EXPECT_EQ(count(remove_small_components(mask, 8)), 35);   // equal: kept
  EXPECT_EQ(count(remove_small_components(mask, 9)), 27);   // below: removed
  EXPECT_EQ(count(remove_small_components(mask, 28)), 0);
  const torch::Tensor kept = remove_small_components(mask, 8);
  EXPECT_EQ(kept.scalar_type(), torch::kBool);
  EXPECT_FALSE(kept[0][0][0].item<bool>());
  EXPECT_TRUE(kept[3][3][1].item<bool>());
  EXPECT_THROW(remove_small_components(mask, -1), Error);
}

TEST(ConnectedComponents, Uint8NonzeroIsForegroundAndLayoutDoesNotMatter) {
  torch::Tensor mask = torch::zeros({2, 3, 20}, torch::kUInt8);
  mask[0][0].slice(0, 0, 9).fill_(255);
  mask[0][0][9] = 1;
  mask[1][2].slice(0, 12, 20).fill_(128);  // 0x80 bytes, the word scan's high bit
  const ComponentLabels result = label_every_way(mask);
  EXPECT_EQ(sizes_of(result), (std::vector<std::int64_t>{10, 8}));

  const torch::Tensor transposed = mask.transpose(1, 2);  // [2, 20, 3], not contiguous
  EXPECT_TRUE(torch::equal(label_components(transposed).labels, label_components(transposed.contiguous()).labels));
}

TEST(ConnectedComponents, RejectsMasksThatAreNotThreeDimensionalBoolOrUint8) {
  EXPECT_THROW(label_components(torch::zeros({4, 4}, torch::kBool)), Error);
  EXPECT_THROW(keep_largest_component(torch::zeros({2, 3, 4, 4}, torch::kBool)), Error);
  EXPECT_THROW(remove_small_components(torch::zeros({4}, torch::kBool), 1), Error);
  EXPECT_THROW(label_components(torch::zeros({2, 4, 4}, torch::kFloat)), Error);
  EXPECT_THROW(label_components(torch::Tensor()), Error);
  try {
    label_components(torch::zeros({4, 4}, torch::kBool));
  } catch (const Error& error) {
    EXPECT_NE(error.problem().find("[4, 4]"), std::string::npos) << error.problem();
    EXPECT_FALSE(error.fix().empty());
  }
}

// Breadth-first flood fill over the 26 neighbours, started from each unlabelled foreground voxel
// in scan order: its numbering is label_components' definition, so labels must match exactly
// (the same partition, numbered the same way).
ComponentLabels flood_fill(const torch::Tensor& mask) {
  const std::int64_t depth = mask.size(0), height = mask.size(1), width = mask.size(2);
  const torch::Tensor foreground = (mask != 0).contiguous();
  const bool* in = foreground.data_ptr<bool>();
  ComponentLabels result;
  result.labels = torch::zeros({depth, height, width}, torch::kInt32);
  std::int32_t* label = result.labels.data_ptr<std::int32_t>();
  std::deque<std::array<std::int64_t, 3>> queue;
  std::int32_t count = 0;
  for (std::int64_t start = 0; start < depth * height * width; ++start) {
    if (!in[start] || label[start] != 0) continue;
    label[start] = ++count;
    std::int64_t size = 0;
    queue.push_back({start / (height * width), (start / width) % height, start % width});
    while (!queue.empty()) {
      const auto [z, y, x] = queue.front();
      queue.pop_front();
      ++size;
      for (std::int64_t dz = -1; dz <= 1; ++dz) {
        for (std::int64_t dy = -1; dy <= 1; ++dy) {
          for (std::int64_t dx = -1; dx <= 1; ++dx) {
            const std::int64_t nz = z + dz, ny = y + dy, nx = x + dx;
            if (nz < 0 || ny < 0 || nx < 0 || nz >= depth || ny >= height || nx >= width) continue;
            const std::int64_t index = (nz * height + ny) * width + nx;
            if (!in[index] || label[index] != 0) continue;
            label[index] = count;
            queue.push_back({nz, ny, nx});
          }
        }
      }
    }
    result.sizes.push_back(size);
  }
  return result;
}

// Random masks of several shapes (widths below, at and past the 8-voxel word) and densities; uint8
// masks hold random nonzero values. Also checks keep_largest / remove_small against the reference.
TEST(ConnectedComponentsRandom, MatchesFloodFill) {
  const std::vector<std::array<std::int64_t, 3>> shapes{{1, 1, 1}, {1, 23, 31}, {7, 9, 11}, {16, 20, 24}, {12, 5, 70}, {3, 40, 8}};
  SplitMix64 random(24);
  int volumes = 0;
  for (const auto& shape : shapes) {
    for (double density : {0.1, 0.2, 0.3, 0.45, 0.6}) {
      const bool as_uint8 = volumes++ % 2 == 1;
      torch::Tensor mask = torch::zeros({shape[0], shape[1], shape[2]}, torch::kUInt8);
      std::uint8_t* data = mask.data_ptr<std::uint8_t>();
      for (std::int64_t i = 0; i < mask.numel(); ++i) {
        if (random.uniform() < density) data[i] = as_uint8 ? static_cast<std::uint8_t>(1 + random.below(255)) : 1;
      }
      if (!as_uint8) mask = mask.to(torch::kBool);
      const std::string where = std::to_string(shape[0]) + "x" + std::to_string(shape[1]) + "x" + std::to_string(shape[2]) +
                                " density " + std::to_string(density);

      const ComponentLabels expected = flood_fill(mask);
      const ComponentLabels actual = label_every_way(mask);
      ASSERT_TRUE(torch::equal(actual.labels, expected.labels)) << where;
      ASSERT_EQ(actual.sizes, expected.sizes) << where;

      std::int32_t largest = 0;
      std::int64_t largest_size = 0;
      for (std::size_t i = 0; i < expected.sizes.size(); ++i) {
        if (expected.sizes[i] > largest_size) largest_size = expected.sizes[i], largest = static_cast<std::int32_t>(i + 1);
      }
      const torch::Tensor largest_mask = largest == 0 ? torch::zeros_like(mask, torch::kBool) : expected.labels == largest;
      EXPECT_TRUE(torch::equal(keep_largest_component(mask), largest_mask)) << where;

      const std::int64_t min_voxels = 3;
      torch::Tensor kept = torch::zeros_like(mask, torch::kBool);
      for (std::size_t i = 0; i < expected.sizes.size(); ++i) {
        if (expected.sizes[i] >= min_voxels) kept |= expected.labels == static_cast<std::int32_t>(i + 1);
      }
      EXPECT_TRUE(torch::equal(remove_small_components(mask, min_voxels), kept)) << where;
    }
  }
}

// A volume large enough for label_components to cut it into slabs on all cores by itself (the
// tests above choose the slabs): the same labels as one slab on one thread.
TEST(ConnectedComponentsRandom, AutomaticSlabsMatchOneSlab) {
  const std::int64_t depth = 40, side = 384;  // 5.9 M voxels: at least two slabs
  torch::Tensor mask = torch::zeros({depth, side, side}, torch::kBool);
  bool* data = mask.data_ptr<bool>();
  SplitMix64 random(2424);
  for (std::int64_t i = 0; i < mask.numel(); ++i) data[i] = random.uniform() < 0.02;  // noise
  for (int ball = 0; ball < 30; ++ball) {
    const std::int64_t z = random.below(depth), y = random.below(side), x = random.below(side), radius = 2 + random.below(12);
    fill_box(mask, {std::max<std::int64_t>(0, z - radius), z + radius}, {std::max<std::int64_t>(0, y - radius), y + radius},
             {std::max<std::int64_t>(0, x - radius), x + radius});
  }
  const ComponentLabels automatic = label_components(mask);
  const ComponentLabels one_slab = detail::label_components_in_slabs(mask, 1, 1);
  EXPECT_TRUE(torch::equal(automatic.labels, one_slab.labels));
  EXPECT_EQ(automatic.sizes, one_slab.sizes);
  EXPECT_GT(automatic.sizes.size(), 1000u);
}

}  // namespace
}  // namespace mlseg
