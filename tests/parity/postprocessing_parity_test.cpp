// Parity (#24): mlseg's postprocessing decision under --nnunet-defaults against nnU-Net's
// determine_postprocessing (nnunetv2/postprocessing/remove_connected_components.py) on the same
// label-map predictions: the same steps kept, the same Dice before and after per label and for
// the foreground mean, and the same postprocessed label maps. Peer: tests/parity/peer/postprocessing.py.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/inference/prediction_folder.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/postprocessing/determine_postprocessing.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace mlseg {
namespace {

constexpr double kDiceTolerance = 1e-12;

TEST(ParityPostprocessing, TheDecisionItsDiceAndThePostprocessedMapsMatchNnUNetsDeterminePostprocessing) {
  MLSEG_REQUIRE_PEER();
  testing::TempDir tmp;
  const auto peer = parity::run_peer("postprocessing.py", {(tmp / "peer").string()}, tmp / "peer");
  const std::filesystem::path raw = peer.folder / "raw" / "Dataset990_PostPro", pred = peer.folder / "pred";
  const Dataset dataset = load_dataset(raw);
  // The peer's prediction folder holds nnU-Net label maps; describe it as `mlseg predict` would.
  ModelDescription model;
  model.channel_names = {"a", "b"};
  model.encoding = LabelEncoding::softmax(2);
  model.dataset_json = read_json_file(raw / "dataset.json");
  ExportOptions export_options;
  export_options.format = PredictionFormat::labelmap;
  write_text_file_atomically(pred / "dataset.json", prediction_dataset_json(model, export_options).dump(2));
  write_text_file_atomically(pred / kPredictionInfoFileName, prediction_info_json(model, export_options).dump(2));

  DeterminePostprocessingOptions options;
  options.allow_remove_small = false;  // --nnunet-defaults
  options.threads = 2;
  options.show_progress = false;
  const PredictionFolderInfo info = read_prediction_folder(pred);
  const PostprocessingDecision decision = determine_postprocessing(info, dataset, options);
  std::cout << format_postprocessing_decision(decision);

  // nnU-Net's steps: labels_or_regions [1, 2] = the whole foreground, k = label k alone.
  const nlohmann::json& steps = peer.meta["steps"];
  ASSERT_EQ(decision.plan.steps.size(), steps.size()) << "nnU-Net kept " << steps.dump() << ", mlseg " << decision.plan.describe();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].is_array()) {
      EXPECT_EQ(decision.plan.steps[i].kind, PostprocessingKind::keep_largest_foreground) << i;
    } else {
      EXPECT_EQ(decision.plan.steps[i].kind, PostprocessingKind::keep_largest) << i;
      EXPECT_EQ(decision.plan.steps[i].channel, steps[i].get<int>() - 1) << i;
    }
  }
  for (int c = 0; c < 2; ++c) {
    const std::string label = std::to_string(c + 1);
    EXPECT_NEAR(decision.dice_before[c].value(), peer.meta["dice_before"][label].get<double>(), kDiceTolerance) << label;
    EXPECT_NEAR(decision.dice_after[c].value(), peer.meta["dice_after"][label].get<double>(), kDiceTolerance) << label;
  }
  EXPECT_NEAR(decision.foreground_before.value(), peer.meta["foreground_before"].get<double>(), kDiceTolerance);
  EXPECT_NEAR(decision.foreground_after.value(), peer.meta["foreground_after"].get<double>(), kDiceTolerance);
  std::cout << "[parity] postprocessing: steps " << steps.dump() << " = " << decision.plan.describe() << "; foreground Dice "
            << decision.foreground_before.format(6) << " -> " << decision.foreground_after.format(6) << " on both sides\n";

  // Applied, the plan writes nnU-Net's postprocessed label maps.
  for (const PredictionFolderCase& c : list_prediction_cases(info)) {
    SCOPED_TRACE(c.case_id);
    const torch::Tensor masks = apply_postprocessing(decision.plan, decode_channels(read_prediction_case(info, c).code));
    const torch::Tensor label = masks[0].to(torch::kLong) * 1 + masks[1].to(torch::kLong) * 2;
    EXPECT_TRUE(torch::equal(label, peer.array("postprocessed/" + c.case_id))) << "remove_all_but_largest_component_from_segmentation";
  }
}

}  // namespace
}  // namespace mlseg
