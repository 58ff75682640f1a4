#include "mlseg/postprocessing/postprocessing.h"

#include <torch/torch.h>

#include <mutex>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/case_loop.h"
#include "mlseg/core/error.h"
#include "mlseg/data/connected_components.h"
#include "mlseg/inference/prediction_folder.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

std::optional<PostprocessingKind> parse_kind(const std::string& text) {
  for (auto kind : {PostprocessingKind::keep_largest_foreground, PostprocessingKind::keep_largest, PostprocessingKind::remove_small}) {
    if (text == to_string(kind)) return kind;
  }
  return std::nullopt;
}

std::string names_of(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

}  // namespace

std::string to_string(PostprocessingKind kind) {
  switch (kind) {
    case PostprocessingKind::keep_largest_foreground:
      return "keep_largest_foreground";
    case PostprocessingKind::keep_largest:
      return "keep_largest";
    case PostprocessingKind::remove_small:
      return "remove_small";
  }
  return "?";
}

std::string PostprocessingStep::describe(const std::vector<std::string>& channel_names) const {
  if (kind == PostprocessingKind::keep_largest_foreground) return "keep the largest foreground component";
  const std::string name = channel >= 0 && channel < static_cast<int>(channel_names.size()) ? channel_names[channel] : "?";
  if (kind == PostprocessingKind::keep_largest) return name + ": keep the largest component";
  return name + ": remove components under " + std::to_string(min_voxels) + " voxels";
}

std::string PostprocessingPlan::describe() const {
  std::string text;
  for (const auto& step : steps) text += (text.empty() ? "" : "; ") + step.describe(channel_names);
  return text.empty() ? "none" : text;
}

Json postprocessing_plan_json(const PostprocessingPlan& plan) {
  Json json;
  json["channel_names"] = plan.channel_names;
  Json steps = Json::array();
  for (const auto& step : plan.steps) {
    Json s;
    s["kind"] = to_string(step.kind);
    if (step.kind != PostprocessingKind::keep_largest_foreground) s["channel"] = plan.channel_names.at(step.channel);
    if (step.kind == PostprocessingKind::remove_small) s["min_voxels"] = step.min_voxels;
    s["description"] = step.describe(plan.channel_names);
    steps.push_back(s);
  }
  json["steps"] = steps;
  json["connectivity"] = "full (26 neighbours in 3D, 8 in a 2D image), each channel on its own";
  return json;
}

PostprocessingPlan postprocessing_plan_from_json(const Json& json, const std::string& source) {
  const std::string fix = "write the file with `mlseg find-best-config` or fix the entry";
  PostprocessingPlan plan;
  try {
    plan.channel_names = json.at("channel_names").get<std::vector<std::string>>();
    for (const Json& s : json.at("steps")) {
      PostprocessingStep step;
      const std::string kind = s.at("kind").get<std::string>();
      const auto parsed = parse_kind(kind);
      if (!parsed)
        throw Error("unknown postprocessing step '" + kind + "'", "use keep_largest_foreground, keep_largest or remove_small",
                    {source, "", ""});
      step.kind = *parsed;
      if (step.kind != PostprocessingKind::keep_largest_foreground) {
        const std::string channel = s.at("channel").get<std::string>();
        for (std::size_t c = 0; c < plan.channel_names.size(); ++c) {
          if (plan.channel_names[c] == channel) step.channel = static_cast<int>(c);
        }
        if (step.channel < 0)
          throw Error("step names channel '" + channel + "', not one of " + names_of(plan.channel_names), fix, {source, "", channel});
      }
      if (step.kind == PostprocessingKind::remove_small) {
        step.min_voxels = s.at("min_voxels").get<std::int64_t>();
        if (step.min_voxels < 0) throw Error("min_voxels is negative", fix, {source, "", plan.channel_names[step.channel]});
      }
      plan.steps.push_back(step);
    }
  } catch (const Json::exception& e) {
    throw Error(std::string("broken postprocessing file: ") + e.what(), fix, {source, "", ""});
  }
  return plan;
}

torch::Tensor apply_postprocessing(const PostprocessingPlan& plan, const torch::Tensor& masks_in) {
  if (masks_in.dim() != 4 || masks_in.size(0) != static_cast<std::int64_t>(plan.channel_names.size())) {
    throw Error("postprocessing expects one mask per channel of the plan (" + std::to_string(plan.channel_names.size()) + ")",
                "postprocess predictions of the model the plan was decided for");
  }
  torch::Tensor masks = masks_in.ne(0).to(torch::kUInt8).contiguous();
  for (const auto& step : plan.steps) {
    if (step.kind == PostprocessingKind::keep_largest_foreground) {
      const torch::Tensor keep = keep_largest_component(masks.amax(0));
      masks.mul_(keep.to(torch::kUInt8).unsqueeze(0));
    } else if (step.kind == PostprocessingKind::keep_largest) {
      masks[step.channel].copy_(keep_largest_component(masks[step.channel]));
    } else {
      masks[step.channel].copy_(remove_small_components(masks[step.channel], step.min_voxels));
    }
  }
  return masks;
}

PostprocessFolderResult postprocess_folder(const fs::path& input, const fs::path& output, const PostprocessingPlan& plan,
                                           const PostprocessFolderOptions& options) {
  const PredictionFolderInfo info = read_prediction_folder(input);
  if (info.model.channel_names != plan.channel_names) {
    throw Error("the predictions' channels (" + names_of(info.model.channel_names) + ") are not the postprocessing plan's (" +
                    names_of(plan.channel_names) + ")",
                "postprocess predictions of the model the plan was decided for", {input.string(), "", ""});
  }
  if (fs::exists(output) && fs::equivalent(input, output)) {
    throw Error("the output folder is the input folder", "write the postprocessed files to another folder (-o)", {output.string(), "", ""});
  }
  ExportOptions export_options = info.export_options;
  if (options.format) export_options.format = *options.format;
  export_options.save_probabilities = false;  // the probabilities do not know about the removed components
  fs::create_directories(output);
  write_text_file_atomically(output / "dataset.json", prediction_dataset_json(info.model, export_options).dump(2) + "\n");
  write_text_file_atomically(output / kPredictionInfoFileName, prediction_info_json(info.model, export_options).dump(2) + "\n");
  Json applied = postprocessing_plan_json(plan);
  applied["applied_to"] = input.string();
  write_text_file_atomically(output / kPostprocessingFileName, applied.dump(2) + "\n");

  const std::vector<PredictionFolderCase> cases = list_prediction_cases(info);
  PostprocessFolderResult result;
  result.cases = static_cast<std::int64_t>(cases.size());
  result.voxels_removed.assign(plan.channel_names.size(), 0);
  std::mutex mutex;
  const CaseLoopOptions loop{"postprocess", "cases", options.threads, options.show_progress};
  for_each_case(
      cases.size(), loop,
      [&](std::size_t i) {
        const CaseLabels labels = read_prediction_case(info, cases[i]);
        const torch::Tensor before = decode_channels(labels.code);
        const torch::Tensor after = apply_postprocessing(plan, before);
        PredictedCase prediction;
        prediction.case_id = cases[i].case_id;
        prediction.code = code_from_masks(after);
        prediction.geometry = labels.geometry;
        prediction.encoding = info.model.encoding;
        prediction.channel_names = info.model.channel_names;
        const ExportResult written = export_prediction(prediction, output, info.model, export_options);
        const torch::Tensor removed = (before.ne(0) & after.eq(0)).flatten(1).sum(1);
        std::lock_guard<std::mutex> lock(mutex);
        for (std::size_t c = 0; c < result.voxels_removed.size(); ++c)
          result.voxels_removed[c] += removed[static_cast<std::int64_t>(c)].item<std::int64_t>();
        result.files.insert(result.files.end(), written.files.begin(), written.files.end());
      },
      [&](std::size_t i) {
        return ErrorLocation{cases[i].path.string(), cases[i].case_id, ""};
      });
  return result;
}

}  // namespace mlseg
