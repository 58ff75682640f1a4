// Parity (e): mlseg's PatchSampler with nnU-Net's defaults (what --nnunet-defaults trains with)
// against nnUNetDataLoader on the same store (3 Hippocampus cases preprocessed by mlseg, its stored
// locations given to nnU-Net as class_locations): which samples of a batch are forced onto
// foreground (get_do_oversample), the lower-corner bounds (get_bbox's lbs/ubs), which class a
// forced patch chooses, and where forced and random patches start (means over 4,000 draws,
// within 5 standard errors). Peer: tests/parity/peer/sampler.py.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>

#include "mlseg/data/patch_sampler.h"
#include "mlseg/data/preprocessed_store.h"
#include "mlseg/io/npy.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mlseg {
namespace {

constexpr int kDraws = 4000;
constexpr double kStandardErrors = 5.0;

std::string joined(const PatchShapeZyx& v) {
  return std::to_string(v[0]) + "," + std::to_string(v[1]) + "," + std::to_string(v[2]);
}

TEST(ParitySampler, NnUNetDefaultsDrawLikeNnUNetDataLoader) {
  MLSEG_REQUIRE_SHARED_DATA();
  MLSEG_REQUIRE_PEER();
  testing::TempDir tmp;
  const fs::path dataset = parity::link_dataset_subset(testing::shared_data_dir() / "Dataset004_Hippocampus",
                                                       {"hippocampus_001", "hippocampus_003", "hippocampus_004"}, tmp / "ds");
  const fs::path work = tmp / "work";
  auto r = testing::run_mlseg("plan '" + dataset.string() + "' --work-dir '" + work.string() + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_mlseg("preprocess '" + dataset.string() + "' -c 3d_fullres --work-dir '" + work.string() + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  PreprocessedStore store(work / "ds" / "preprocessed" / "3d_fullres");

  // nnU-Net's patch_size is the initial (larger) patch the spatial augmentation needs; final_patch_size the network's.
  const PatchShapeZyx patch{56, 72, 56}, final_patch{40, 56, 40};
  const std::int64_t batch = 9;
  SamplerOptions options(batch, patch);
  options.final_patch_size_zyx(final_patch);  // everything else: the defaults, nnU-Net's

  std::vector<std::string> arguments{(tmp / "peer").string(), joined(patch), joined(final_patch), std::to_string(batch),
                                     std::to_string(options.foreground_oversample()), std::to_string(kDraws)};
  for (std::size_t k = 0; k < store.num_cases(); ++k) {
    const StoredCase& stored = store.stored_case(k);
    std::string groups;
    for (const auto& group : stored.properties().locations) {
      if (group.kind != "channel" || group.count == 0) continue;
      auto rows = torch::empty({group.count, 3}, torch::kInt64);
      for (std::int64_t i = 0; i < group.count; ++i) {
        const auto zyx = stored.location(group.offset + i);
        for (int a = 0; a < 3; ++a) rows[i][a] = zyx[a];
      }
      const fs::path file = tmp / ("loc_" + stored.case_id() + "_" + std::to_string(group.channel + 1) + ".npy");
      write_npy(file, rows);
      groups += (groups.empty() ? "" : "+") + std::to_string(group.channel + 1) + ":" + file.string();
    }
    arguments.push_back(stored.case_id() + "=" + joined(stored.shape_zyx()) + "=" + groups);
  }
  const auto peer = parity::run_peer("sampler.py", arguments, tmp / "peer");

  SCOPED_TRACE("nnUNetDataLoader.get_bbox / get_do_oversample");
  PatchSampler all(store, options);
  for (std::int64_t j = 0; j < batch; ++j) {
    EXPECT_EQ(all.is_forced(j), peer.meta["forced_slots"][j].get<bool>()) << "sample " << j << " of a batch of " << batch;
  }
  for (std::size_t k = 0; k < store.num_cases(); ++k) {
    const StoredCase& stored = store.stored_case(k);
    const auto& expected = peer.meta["cases"][stored.case_id()];
    SCOPED_TRACE("case " + stored.case_id());
    PatchSampler sampler(store, options, {k});
    const CornerBounds bounds = sampler.corner_bounds(stored.shape_zyx());
    for (int a = 0; a < 3; ++a) {
      EXPECT_EQ(bounds.lower[a], expected["lbs"][a].get<std::int64_t>()) << "lower bound, axis " << a;
      EXPECT_EQ(bounds.upper[a], expected["ubs"][a].get<std::int64_t>()) << "upper bound, axis " << a;
    }
    std::map<int, int> class_counts;
    for (const bool forced : {true, false}) {
      std::array<double, 3> sum{}, sum_sq{};
      for (int i = 0; i < kDraws; ++i) {
        const PatchDraw draw = sampler.sample(i, forced ? batch - 1 : 0);
        ASSERT_EQ(draw.forced, forced);
        if (forced) ++class_counts[draw.forced_channel + 1];
        for (int a = 0; a < 3; ++a) {
          sum[a] += static_cast<double>(draw.begin_zyx[a]);
          sum_sq[a] += static_cast<double>(draw.begin_zyx[a] * draw.begin_zyx[a]);
        }
      }
      const auto& theirs = expected[forced ? "forced" : "random"];
      for (int a = 0; a < 3; ++a) {
        const double mean = sum[a] / kDraws, sd = std::sqrt(std::max(0.0, sum_sq[a] / kDraws - mean * mean));
        const double their_mean = theirs["mean"][a].get<double>(), their_sd = theirs["std"][a].get<double>();
        const double standard_error = std::sqrt((sd * sd + their_sd * their_sd) / kDraws);
        EXPECT_NEAR(mean, their_mean, kStandardErrors * standard_error + 1e-9)
            << (forced ? "forced" : "random") << " patches' lower corner, axis " << a;
        std::cout << "[parity] " << stored.case_id() << (forced ? " forced" : " random") << " corner axis " << a << ": mean "
                  << mean << " (nnU-Net " << their_mean << "), sd " << sd << " (" << their_sd << ")\n";
      }
    }
    for (const auto& [label, count] : expected["class_counts"].items()) {
      const double theirs = count.get<double>() / kDraws, ours = class_counts[std::stoi(label)] / double(kDraws);
      const double standard_error = std::sqrt(2 * theirs * (1 - theirs) / kDraws);
      EXPECT_NEAR(ours, theirs, kStandardErrors * standard_error + 1e-9) << "share of forced patches on label " << label;
      std::cout << "[parity] " << stored.case_id() << " forced on label " << label << ": " << ours << " (nnU-Net " << theirs << ")\n";
    }
  }
}

}  // namespace
}  // namespace mlseg
