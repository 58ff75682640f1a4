#include "mlseg/metrics/case_metrics.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>

#include "mlseg/core/error.h"
#include "mlseg/labels/code_encode.h"
#include "mlseg/metrics/overlap_metrics.h"

namespace mlseg {

std::string metric_key(Metric metric) {
  switch (metric) {
    case Metric::dice: return "Dice";
    case Metric::iou: return "IoU";
    case Metric::precision: return "precision";
    case Metric::recall: return "recall";
    case Metric::volume_ref_ml: return "volume_ref_ml";
    case Metric::volume_pred_ml: return "volume_pred_ml";
    case Metric::abs_volume_diff_ml: return "abs_volume_diff_ml";
    case Metric::rel_volume_diff: return "rel_volume_diff";
    case Metric::hd: return "HD";
    case Metric::hd95: return "HD95";
    case Metric::assd: return "ASSD";
    case Metric::nsd: return "NSD";
  }
  return "";
}

bool is_surface_metric(Metric metric) {
  return metric == Metric::hd || metric == Metric::hd95 || metric == Metric::assd || metric == Metric::nsd;
}

bool is_similarity_metric(Metric metric) {
  return metric == Metric::dice || metric == Metric::iou || metric == Metric::precision || metric == Metric::recall ||
         metric == Metric::nsd;
}

std::string metric_unit(Metric metric) {
  switch (metric) {
    case Metric::hd:
    case Metric::hd95:
    case Metric::assd: return "mm";
    case Metric::volume_ref_ml:
    case Metric::volume_pred_ml:
    case Metric::abs_volume_diff_ml: return "ml";
    default: return "";
  }
}

bool MetricSelection::contains(Metric metric) const {
  return std::find(metrics.begin(), metrics.end(), metric) != metrics.end();
}

bool MetricSelection::needs_surface() const { return std::any_of(metrics.begin(), metrics.end(), is_surface_metric); }

MetricSelection parse_metric_selection(const std::string& text) {
  std::vector<bool> chosen(kAllMetrics.size(), false);
  const auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  std::stringstream stream(text);
  std::string item;
  bool any = false;
  while (std::getline(stream, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    const std::string name = lower(item);
    bool known = false;
    for (std::size_t i = 0; i < kAllMetrics.size(); ++i) {
      const Metric metric = kAllMetrics[i];
      const bool volume = metric == Metric::volume_ref_ml || metric == Metric::volume_pred_ml ||
                          metric == Metric::abs_volume_diff_ml || metric == Metric::rel_volume_diff;
      if (name == "all" || name == lower(metric_key(metric)) || (name == "volume" && volume)) {
        chosen[i] = true;
        known = true;
      }
    }
    if (!known) {
      throw Error("unknown metric '" + item + "'",
                  "choose from dice, iou, precision, recall, volume, hd, hd95, assd, nsd (or all), comma-separated");
    }
    any = true;
  }
  if (!any) throw Error("no metric chosen", "name at least one metric, e.g. --metrics dice,iou");
  MetricSelection selection;
  for (std::size_t i = 0; i < kAllMetrics.size(); ++i) {
    if (chosen[i]) selection.metrics.push_back(kAllMetrics[i]);
  }
  return selection;
}

std::vector<ChannelCaseMetrics> case_metrics(const CodeView& pred, const CodeView& ref,
                                             const std::array<double, 3>& spacing_zyx_mm, const std::vector<int>& channels,
                                             const CaseMetricOptions& options, const std::uint8_t* ignore_flags) {
  const std::vector<ConfusionCounts> counts = count_confusion(pred, ref, ignore_flags);
  std::vector<SurfaceMetrics> surface;
  if (options.metrics.needs_surface()) {
    if (ignore_flags != nullptr) {
      // Fold the extra ignore mask into the reference's ignore flag for the surface pass.
      CodeArray flagged = empty_code_array(ref.shape_zyx, ref.num_channels);
      std::memcpy(flagged.storage.data, ref.words, static_cast<std::size_t>(flagged.storage.size));
      add_channel_mask(flagged, ref.num_channels, LabelValuesView{ignore_flags, LabelValueType::uint8, 1, ref.shape_zyx});
      surface = surface_metrics_codes(pred, flagged, spacing_zyx_mm, channels, options.surface);
    } else {
      surface = surface_metrics_codes(pred, ref, spacing_zyx_mm, channels, options.surface);
    }
  }
  const double voxel_mm3 = spacing_zyx_mm[0] * spacing_zyx_mm[1] * spacing_zyx_mm[2];
  std::vector<ChannelCaseMetrics> result;
  result.reserve(channels.size());
  for (std::size_t i = 0; i < channels.size(); ++i) {
    ChannelCaseMetrics m;
    m.channel = channels[i];
    m.counts = counts.at(static_cast<std::size_t>(channels[i]));
    m.state = empty_state(m.counts.ref_voxels(), m.counts.pred_voxels());
    const OverlapMetrics overlap = overlap_metrics(m.counts, voxel_mm3);
    for (Metric metric : options.metrics.metrics) {
      switch (metric) {
        case Metric::dice: m.values.emplace(metric, overlap.dice); break;
        case Metric::iou: m.values.emplace(metric, overlap.iou); break;
        case Metric::precision: m.values.emplace(metric, overlap.precision); break;
        case Metric::recall: m.values.emplace(metric, overlap.recall); break;
        case Metric::volume_ref_ml: m.values.emplace(metric, overlap.volume_ref_ml); break;
        case Metric::volume_pred_ml: m.values.emplace(metric, overlap.volume_pred_ml); break;
        case Metric::abs_volume_diff_ml: m.values.emplace(metric, overlap.abs_volume_diff_ml); break;
        case Metric::rel_volume_diff: m.values.emplace(metric, overlap.rel_volume_diff); break;
        case Metric::hd: m.values.emplace(metric, surface[i].hd); break;
        case Metric::hd95: m.values.emplace(metric, surface[i].hd95); break;
        case Metric::assd: m.values.emplace(metric, surface[i].assd); break;
        case Metric::nsd: m.values.emplace(metric, surface[i].nsd); break;
      }
    }
    result.push_back(std::move(m));
  }
  return result;
}

}  // namespace mlseg
