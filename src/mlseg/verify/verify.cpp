#include "mlseg/verify/verify.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

#include "mlseg/core/content_hash.h"
#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/io/dataset.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

struct CaseResult {
  std::vector<VerifyProblem> problems;
  bool label_read = false;
  std::vector<std::int64_t> channel_voxels;  // per channel
  std::set<std::int64_t> raw_values;          // label_map: values present
  bool image_hash_valid = false;
  std::uint64_t image_hash = 0;
  bool label_nonempty = false;
  std::uint64_t label_hash = 0;
  std::vector<std::int64_t> channels_per_image_file;  // -1 if unreadable
};

class CaseChecker {
 public:
  CaseChecker(const Dataset& dataset, const CaseFiles& files, const VerifyOptions& options, CaseResult& result)
      : dataset_(dataset), files_(files), options_(options), result_(result) {}

  void run(bool with_labels) {
    check_images();
    if (with_labels && files_.has_label) check_labels();
  }

 private:
  std::string relative(const fs::path& path) const {
    std::error_code ignored;
    const fs::path rel = fs::relative(path, dataset_.root, ignored);
    return rel.empty() || rel.native().rfind("..", 0) == 0 ? path.string() : rel.string();
  }

  void add(Severity severity, std::string code, const fs::path& file, std::string message, std::string fix) {
    result_.problems.push_back({severity, std::move(code), files_.case_id, file.empty() ? "" : relative(file),
                                std::move(message), std::move(fix)});
  }

  void add_read_failure(const Error& error, const fs::path& file) {
    add(Severity::error, error.code().empty() ? "unreadable_file" : error.code(), file, error.problem(), error.fix());
  }

  void check_images() {
    std::uint64_t hash = 0;
    bool all_read = !files_.images.empty();
    for (const auto& file : files_.images) {
      Image image;
      try {
        image = read_image(file, options_.read);
      } catch (const Error& error) {
        // Missing image files are already reported from the layout listing.
        if (fs::exists(file)) add_read_failure(error, file);
        result_.channels_per_image_file.push_back(-1);
        all_read = false;
        continue;
      }
      result_.channels_per_image_file.push_back(image.num_channels());
      const std::int64_t non_finite = (~torch::isfinite(image.data)).sum().item<std::int64_t>();
      if (non_finite > 0) {
        add(Severity::error, "image_not_finite", file,
            std::to_string(non_finite) + " voxels are NaN or infinite",
            "replace them (e.g. with the image minimum) before training; NaN input makes every loss NaN");
      }
      compare_grid(image, file, "image");
      const torch::Tensor& data = image.data;
      hash = hash_bytes(data.data_ptr(), static_cast<std::size_t>(data.numel()) * data.element_size(), hash);
    }
    result_.image_hash_valid = all_read;
    result_.image_hash = hash;
  }

  // The first readable file of the case is the reference grid; every other file must match it.
  // Returns false when the shape differs (the file's voxels cannot be compared with the others).
  bool compare_grid(const Image& image, const fs::path& file, const char* what) {
    if (!have_reference_) {
      have_reference_ = true;
      reference_ = image.geometry;
      reference_shape_ = image.shape_zyx();
      reference_file_ = file;
      return true;
    }
    if (image.shape_zyx() != reference_shape_) {
      add(Severity::error, std::string(what) + "_shape_mismatch", file,
          "shape " + format_shape(image.shape_zyx()) + " (z x y x x) differs from " + format_shape(reference_shape_) +
              " of " + relative(reference_file_),
          "all files of a case must share one voxel grid: resample or crop them to match");
      return false;
    }
    if (!spacing_matches(image.geometry, reference_, options_.tolerance)) {
      add(Severity::error, "spacing_mismatch", file,
          "spacing " + format_zyx(image.geometry.spacing_zyx_mm) + " mm differs from " +
              format_zyx(reference_.spacing_zyx_mm) + " mm of " + relative(reference_file_),
          "fix the header spacing so that images and label agree");
    }
    if (!origin_matches(image.geometry, reference_, options_.tolerance)) {
      add(Severity::warning, "origin_mismatch", file,
          "origin " + format_zyx(image.geometry.origin_zyx_mm) + " mm differs from " +
              format_zyx(reference_.origin_zyx_mm) + " mm of " + relative(reference_file_),
          "copy the image's origin into the label header (voxels are used as they are; outputs take the image's geometry)");
    }
    if (!direction_matches(image.geometry, reference_, options_.tolerance)) {
      add(Severity::warning, "direction_mismatch", file,
          "direction matrix differs from that of " + relative(reference_file_),
          "copy the image's direction into the label header (check the label is not flipped)");
    }
    return true;
  }

  void check_labels() {
    const LabelSpec& spec = dataset_.labels;
    switch (spec.format) {
      case LabelFormat::label_map: check_label_map(); break;
      case LabelFormat::bitmask: check_bitmask(); break;
      case LabelFormat::multihot4d: check_multihot(); break;
      case LabelFormat::channel_masks: check_channel_masks(); break;
    }
    if (result_.label_read) {
      std::int64_t total = 0;
      for (std::int64_t voxels : result_.channel_voxels) total += voxels;
      result_.label_nonempty = total > 0;
      if (total == 0) {
        const fs::path file = files_.label.empty() && !files_.channel_mask_files.empty() ? files_.channel_mask_files[0].parent_path() : files_.label;
        add(Severity::warning, "empty_label", file, "the label is empty: no voxel belongs to any channel",
            "fine for negative cases; otherwise check the label was exported correctly");
      }
    }
  }

  bool read_label(const fs::path& file, Image& label) {
    try {
      label = read_label_image(file, options_.read);
      return true;
    } catch (const Error& error) {
      add_read_failure(error, file);
      return false;
    }
  }

  bool require_single_volume(const Image& label, const fs::path& file) {
    if (label.num_channels() == 1) return true;
    add(Severity::error, "label_not_single_volume", file,
        "the label file holds " + std::to_string(label.num_channels()) + " volumes/components; a " +
            to_string(dataset_.labels.format) + " label is one integer map",
        "store one label map per case, or declare \"label_format\": \"multihot4d\" for one volume per channel");
    return false;
  }

  void hash_label(const torch::Tensor& data) {
    result_.label_hash = hash_bytes(data.data_ptr(), static_cast<std::size_t>(data.numel()) * data.element_size(),
                                    result_.label_hash);
  }

  void report_unexpected(const std::vector<UnexpectedValue>& unexpected, const fs::path& file) {
    std::string listing;
    for (std::size_t i = 0; i < unexpected.size() && i < 8; ++i) {
      listing += (i ? ", " : "") + std::to_string(unexpected[i].value) + " (" +
                 std::to_string(unexpected[i].voxels) + " voxels)";
    }
    if (unexpected.size() > 8) listing += ", ... " + std::to_string(unexpected.size()) + " values in all";
    if (dataset_.labels.format == LabelFormat::bitmask) {
      add(Severity::error, "bitmask_value_outside_declared_bits", file,
          "values use bits no channel declares: " + listing,
          "declare a channel for each bit used (\"name\": bit value), or clear the stray bits");
    } else {
      add(Severity::error, "label_value_not_declared", file, "label values not declared in dataset.json: " + listing,
          "add them to \"labels\" (as a label or inside a region), or fix the label file");
    }
  }

  void check_label_map() {
    Image label;
    if (!read_label(files_.label, label)) return;
    if (!compare_grid(label, files_.label, "label")) return;  // presence of a mismatched label would mislead
    if (!require_single_volume(label, files_.label)) return;
    const LabelSpec& spec = dataset_.labels;
    // One pass: histogram over the declared range, stray values counted aside.
    const auto allowed = spec.allowed_raw_values();
    const std::int64_t max_allowed = allowed.back();
    std::vector<std::int64_t> histogram(static_cast<std::size_t>(max_allowed) + 1, 0);
    std::map<std::int64_t, std::int64_t> stray;
    const auto* values = label.data.data_ptr<std::int64_t>();
    const std::int64_t count = label.data.numel();
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t value = values[i];
      if (value >= 0 && value <= max_allowed) {
        ++histogram[value];
      } else {
        ++stray[value];
      }
    }
    std::set<std::int64_t> allowed_set(allowed.begin(), allowed.end());
    std::vector<UnexpectedValue> unexpected;
    for (std::int64_t value = 0; value <= max_allowed; ++value) {
      if (histogram[value] > 0 && !allowed_set.count(value)) unexpected.push_back({value, histogram[value]});
      if (histogram[value] > 0) result_.raw_values.insert(value);
    }
    for (const auto& [value, voxels] : stray) unexpected.push_back({value, voxels});
    std::sort(unexpected.begin(), unexpected.end(), [](auto& a, auto& b) { return a.value < b.value; });
    if (!unexpected.empty()) report_unexpected(unexpected, files_.label);
    result_.channel_voxels.assign(spec.num_channels(), 0);
    for (int c = 0; c < spec.num_channels(); ++c) {
      for (std::int64_t value : spec.channels[c].raw_values) result_.channel_voxels[c] += histogram[value];
    }
    result_.label_read = true;
    hash_label(label.data);
  }

  void check_bitmask() {
    Image label;
    if (!read_label(files_.label, label)) return;
    if (!compare_grid(label, files_.label, "label")) return;  // presence of a mismatched label would mislead
    if (!require_single_volume(label, files_.label)) return;
    const auto unexpected = find_unexpected_values(label.data, dataset_.labels);
    if (!unexpected.empty()) {
      report_unexpected(unexpected, files_.label);
      return;
    }
    const CodeVolume code = encode_label_map(label.data, dataset_.labels);
    auto counts = count_channel_voxels(code);
    counts.pop_back();  // ignore flag
    result_.channel_voxels = counts;
    result_.label_read = true;
    hash_label(label.data);
  }

  // Distinct values of a mask, up to `limit` of them.
  static std::vector<std::int64_t> distinct_values(const torch::Tensor& data, std::size_t limit) {
    std::vector<std::int64_t> seen;
    const auto* values = data.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < data.numel() && seen.size() < limit; ++i) {
      if (std::find(seen.begin(), seen.end(), values[i]) == seen.end()) seen.push_back(values[i]);
    }
    std::sort(seen.begin(), seen.end());
    return seen;
  }

  void check_binary(const torch::Tensor& data, const fs::path& file, const std::string& what) {
    const auto values = distinct_values(data, 3);
    const bool has_negative = !values.empty() && values.front() < 0;
    if (values.size() > 2 || has_negative || (values.size() == 2 && values[0] != 0)) {
      std::string listing;
      for (std::size_t i = 0; i < values.size(); ++i) listing += (i ? ", " : "") + std::to_string(values[i]);
      add(Severity::warning, "mask_not_binary", file,
          what + " is not a binary mask (values include " + listing + (values.size() > 2 ? ", ..." : "") +
              "); every nonzero voxel counts as inside",
          "store masks as 0/1 (or 0/255 for PNG)");
    }
  }

  void check_multihot() {
    Image label;
    if (!read_label(files_.label, label)) return;
    if (!compare_grid(label, files_.label, "label")) return;
    const LabelSpec& spec = dataset_.labels;
    std::int64_t needed = 0;
    for (const auto& channel : spec.channels) needed = std::max(needed, channel.raw_values[0]);
    if (label.num_channels() < needed) {
      add(Severity::error, "multihot_volume_count", files_.label,
          "the 4D label has " + std::to_string(label.num_channels()) + " volumes but dataset.json declares " +
              std::to_string(needed),
          "store one volume per channel, in the order of \"labels\"");
      return;
    }
    if (label.num_channels() > needed) {
      add(Severity::warning, "multihot_volume_count", files_.label,
          "the 4D label has " + std::to_string(label.num_channels()) + " volumes, dataset.json declares " +
              std::to_string(needed) + "; the extra volumes are ignored",
          "declare a channel for every volume, or drop the extra volumes");
    }
    for (int c = 0; c < spec.num_channels(); ++c) {
      check_binary(label.data[spec.channels[c].raw_values[0] - 1].contiguous(), files_.label,
                   "volume " + std::to_string(spec.channels[c].raw_values[0]) + " (" + spec.channels[c].name + ")");
    }
    const CodeVolume code = encode_multihot(label.data, spec);
    auto counts = count_channel_voxels(code);
    counts.pop_back();
    result_.channel_voxels = counts;
    result_.label_read = true;
    hash_label(label.data);
  }

  void check_channel_masks() {
    const LabelSpec& spec = dataset_.labels;
    result_.channel_voxels.assign(spec.num_channels(), 0);
    bool all_read = true;
    for (int c = 0; c < spec.num_channels(); ++c) {
      const fs::path& file = files_.channel_mask_files.at(c);
      if (file.empty() || !fs::exists(file)) {
        add(Severity::error, "missing_mask_file", file.empty() ? files_.label : file,
            "no mask file for channel \"" + spec.channels[c].name + "\"",
            "add the channel's mask (an all-zero mask if the structure is absent)");
        all_read = false;
        continue;
      }
      Image mask;
      if (!read_label(file, mask)) {
        all_read = false;
        continue;
      }
      if (!compare_grid(mask, file, "label")) {
        all_read = false;
        continue;
      }
      torch::Tensor data = mask.data;
      if (mask.num_channels() > 1) data = std::get<0>(data.max(0, true)).contiguous();  // RGB-saved mask
      check_binary(data, file, "the mask");
      result_.channel_voxels[c] = data.ne(0).sum().item<std::int64_t>();
      hash_label(data);
    }
    result_.label_read = all_read;
  }

  const Dataset& dataset_;
  const CaseFiles& files_;
  const VerifyOptions& options_;
  CaseResult& result_;
  bool have_reference_ = false;
  Geometry reference_;
  std::array<std::int64_t, 3> reference_shape_{};
  fs::path reference_file_;
};

void sort_problems(std::vector<VerifyProblem>& problems) {
  std::stable_sort(problems.begin(), problems.end(), [](const VerifyProblem& a, const VerifyProblem& b) {
    if (a.severity != b.severity) return a.severity == Severity::error;
    if (a.case_id != b.case_id) return a.case_id < b.case_id;
    return a.file < b.file;
  });
}

std::string join_ids(const std::vector<std::string>& ids, std::size_t limit = 6) {
  std::string text;
  for (std::size_t i = 0; i < ids.size() && i < limit; ++i) text += (i ? ", " : "") + ids[i];
  if (ids.size() > limit) text += ", ... (" + std::to_string(ids.size()) + " cases)";
  return text;
}

void check_dataset_wide(const Dataset& dataset, const std::vector<CaseResult>& results, bool check_duplicates,
                        VerifyReport& report) {
  const LabelSpec& spec = dataset.labels;
  const std::string json_file = "dataset.json";
  auto add = [&](Severity severity, std::string code, std::string case_id, std::string file, std::string message,
                 std::string fix) {
    report.problems.push_back({severity, std::move(code), std::move(case_id), std::move(file), std::move(message),
                               std::move(fix)});
  };
  if (dataset.num_training && *dataset.num_training != static_cast<std::int64_t>(dataset.training.size())) {
    add(Severity::error, "num_training_mismatch", "", json_file,
        "numTraining is " + std::to_string(*dataset.num_training) + " but " +
            std::to_string(dataset.training.size()) + " training cases were found",
        "set numTraining to " + std::to_string(dataset.training.size()) + ", or add the missing cases");
  }
  // Channel presence.
  std::int64_t labels_read = 0;
  report.channels.resize(spec.num_channels());
  for (int c = 0; c < spec.num_channels(); ++c) report.channels[c].name = spec.channels[c].name;
  std::set<std::int64_t> raw_values;
  for (const auto& result : results) {
    if (!result.label_read) continue;
    ++labels_read;
    raw_values.insert(result.raw_values.begin(), result.raw_values.end());
    for (int c = 0; c < spec.num_channels(); ++c) {
      if (result.channel_voxels[c] > 0) ++report.channels[c].cases_present;
      report.channels[c].voxels += result.channel_voxels[c];
    }
  }
  if (labels_read > 0) {
    for (const auto& channel : report.channels) {
      if (channel.cases_present == 0) {
        add(Severity::warning, "channel_never_present", "", json_file,
            "channel \"" + channel.name + "\" is empty in " +
                (labels_read == 1 ? std::string("the only readable label") : "all " + std::to_string(labels_read) + " readable labels"),
            "check the label definition; a channel with no voxels cannot be learned or validated");
      }
    }
    if (spec.is_region_based()) {
      for (const auto& channel : spec.channels) {
        for (std::int64_t value : channel.raw_values) {
          if (!raw_values.count(value)) {
            add(Severity::warning, "region_label_unused", "", json_file,
                "region \"" + channel.name + "\" includes label " + std::to_string(value) +
                    ", which no case contains",
                "harmless if the label is merely rare; otherwise check the region's label list");
          }
        }
      }
    }
  }
  // Image channels per file must agree across cases.
  std::map<std::vector<std::int64_t>, std::vector<std::string>> layouts;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& per_file = results[i].channels_per_image_file;
    if (std::find(per_file.begin(), per_file.end(), -1) == per_file.end() && !per_file.empty()) {
      layouts[per_file].push_back(dataset.training[i].case_id);
    }
  }
  if (layouts.size() > 1) {
    auto common = std::max_element(layouts.begin(), layouts.end(),
                                   [](auto& a, auto& b) { return a.second.size() < b.second.size(); });
    for (const auto& [layout, ids] : layouts) {
      if (&layout == &common->first) continue;
      std::string counts;
      for (std::size_t f = 0; f < layout.size(); ++f) counts += (f ? "/" : "") + std::to_string(layout[f]);
      add(Severity::error, "image_channel_count_differs", ids.front(), "",
          "image files hold " + counts + " channels here but most cases differ (" + join_ids(ids) + ")",
          "store every case's images with the same channels (e.g. all RGB or all grayscale)");
    }
  }
  if (!check_duplicates) return;
  std::unordered_map<std::uint64_t, std::vector<std::string>> by_image, by_label;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].image_hash_valid) by_image[results[i].image_hash].push_back(dataset.training[i].case_id);
    if (results[i].label_read && results[i].label_nonempty) {
      by_label[results[i].label_hash].push_back(dataset.training[i].case_id);
    }
  }
  auto report_groups = [&](const auto& groups, const char* code, const char* what) {
    std::vector<std::vector<std::string>> sorted_groups;
    for (const auto& [hash, ids] : groups) {
      if (ids.size() > 1) {
        auto copy = ids;
        std::sort(copy.begin(), copy.end());
        sorted_groups.push_back(copy);
      }
    }
    std::sort(sorted_groups.begin(), sorted_groups.end());
    for (const auto& ids : sorted_groups) {
      add(Severity::warning, code, ids.front(), "",
          std::string("identical ") + what + " in cases " + join_ids(ids),
          "remove the duplicate case(s); duplicates leak between training and validation folds");
    }
  };
  report_groups(by_image, "duplicate_image", "image content");
  report_groups(by_label, "duplicate_label", "label content");
}

}  // namespace

std::int64_t VerifyReport::num_errors() const {
  return std::count_if(problems.begin(), problems.end(), [](auto& p) { return p.severity == Severity::error; });
}
std::int64_t VerifyReport::num_warnings() const {
  return static_cast<std::int64_t>(problems.size()) - num_errors();
}
int VerifyReport::exit_code(bool strict) const {
  if (num_errors() > 0) return 2;
  if (strict && num_warnings() > 0) return 1;
  return 0;
}

VerifyReport verify_dataset(const fs::path& dataset_dir, const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  VerifyReport report;
  report.dataset_name = dataset_dir.filename().string();
  Dataset dataset;
  try {
    dataset = load_dataset(dataset_dir);
  } catch (const Error& error) {
    std::error_code ignored;
    const fs::path rel = fs::relative(error.where().file, dataset_dir, ignored);
    report.problems.push_back({Severity::error, error.code().empty() ? "invalid_dataset" : error.code(),
                               error.where().case_id, rel.empty() ? error.where().file : rel.string(),
                               error.problem(), error.fix()});
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }
  report.dataset_name = dataset.name;
  report.label_format = to_string(dataset.labels.format);
  report.num_training_cases = static_cast<std::int64_t>(dataset.training.size());
  report.num_test_cases = static_cast<std::int64_t>(dataset.test.size());
  report.image_channels = dataset.image_channel_names;

  for (const auto& problem : dataset.layout_problems) {
    std::error_code ignored;
    const fs::path rel = fs::relative(problem.file, dataset.root, ignored);
    const bool warning = problem.kind == LayoutProblem::Kind::unexpected_mask_file;
    static const std::map<LayoutProblem::Kind, std::string> codes{
        {LayoutProblem::Kind::orphan_image, "orphan_image"}, {LayoutProblem::Kind::orphan_label, "orphan_label"},
        {LayoutProblem::Kind::missing_image, "missing_image"}, {LayoutProblem::Kind::missing_label, "missing_label"},
        {LayoutProblem::Kind::unexpected_mask_file, "unexpected_mask_file"}, {LayoutProblem::Kind::other, "layout"}};
    report.problems.push_back({warning ? Severity::warning : Severity::error, codes.at(problem.kind), problem.case_id,
                               problem.file.empty() ? "" : rel.string(), problem.message, problem.fix});
  }

  const std::size_t num_training = dataset.training.size();
  const std::size_t total = num_training + dataset.test.size();
  std::vector<CaseResult> results(total);
  ProgressOptions progress_options;
  progress_options.enabled = options.show_progress;
  Progress progress("verify", static_cast<std::int64_t>(total), "cases", progress_options);
  parallel_for(total, options.threads, [&](std::size_t index) {
    const bool training = index < num_training;
    const CaseFiles& files = training ? dataset.training[index] : dataset.test[index - num_training];
    CaseChecker checker(dataset, files, options, results[index]);
    try {
      checker.run(training);
    } catch (const std::exception& error) {
      // Anything unexpected still becomes a located problem, never a crash.
      results[index].problems.push_back({Severity::error, "internal_error", files.case_id, "",
                                         std::string("unexpected failure while checking: ") + error.what(),
                                         "please report this with the file that caused it"});
    }
    progress.advance();
  });
  progress.finish();

  std::vector<CaseResult> training_results(results.begin(), results.begin() + static_cast<std::ptrdiff_t>(num_training));
  for (const auto& result : results) {
    report.problems.insert(report.problems.end(), result.problems.begin(), result.problems.end());
  }
  check_dataset_wide(dataset, training_results, options.check_duplicates, report);
  sort_problems(report.problems);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace mlseg
