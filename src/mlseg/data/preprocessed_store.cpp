#include "mlseg/data/preprocessed_store.h"

#include <algorithm>
#include <cstring>

#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"

namespace mlseg {
namespace {

constexpr const char* kRerunPreprocess = "re-run `mlseg preprocess DATASET -c CONFIG` to rewrite the store";

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string zyx_text(const std::array<std::int64_t, 3>& zyx) {
  return shape_text({zyx[0], zyx[1], zyx[2]});
}

Error case_error(const std::string& problem, const std::filesystem::path& file, const std::string& case_id) {
  return Error(problem, kRerunPreprocess).located({file.string(), case_id, ""});
}

/// Opens a mapping, adding the case to errors about the file.
std::shared_ptr<NpyMapping> map_case_file(const std::filesystem::path& file, const std::string& case_id) {
  if (!std::filesystem::exists(file)) throw case_error("the file is missing", file, case_id);
  try {
    return NpyMapping::open(file);
  } catch (const Error& error) {
    throw error.located({file.string(), case_id, ""});
  }
}

/// Copies the part of a [N, Z, Y, X] array (item_size bytes per element) inside the box
/// [begin, begin + size) into a [N, size] buffer; the rest of the buffer is zeroed.
void copy_box(const char* source, const std::array<std::int64_t, 3>& shape, std::int64_t planes,
              std::size_t item_size, const std::array<std::int64_t, 3>& begin,
              const std::array<std::int64_t, 3>& size, char* target) {
  const std::int64_t target_plane = size[0] * size[1] * size[2];
  std::array<std::int64_t, 3> from{}, to{};
  bool overlap = true;
  for (int d = 0; d < 3; ++d) {
    from[d] = std::clamp<std::int64_t>(begin[d], 0, shape[d]);
    to[d] = std::clamp<std::int64_t>(begin[d] + size[d], 0, shape[d]);
    overlap = overlap && to[d] > from[d];
  }
  // Padding is zero (image 0, code 0 = background), written row by row around the copied part,
  // so that each target byte is written once.
  const std::size_t target_row = static_cast<std::size_t>(size[2]) * item_size;
  const std::size_t left = overlap ? static_cast<std::size_t>(from[2] - begin[2]) * item_size : 0;
  const std::size_t row_bytes = overlap ? static_cast<std::size_t>(to[2] - from[2]) * item_size : 0;
  const std::int64_t source_plane = shape[0] * shape[1] * shape[2];
  for (std::int64_t n = 0; n < planes; ++n) {
    for (std::int64_t tz = 0; tz < size[0]; ++tz) {
      for (std::int64_t ty = 0; ty < size[1]; ++ty) {
        char* const row = target + static_cast<std::size_t>(n * target_plane + (tz * size[1] + ty) * size[2]) * item_size;
        const std::int64_t z = begin[0] + tz, y = begin[1] + ty;
        if (!overlap || z < from[0] || z >= to[0] || y < from[1] || y >= to[1]) {
          std::memset(row, 0, target_row);
          continue;
        }
        const std::int64_t source_index = n * source_plane + (z * shape[1] + y) * shape[2] + from[2];
        std::memset(row, 0, left);
        std::memcpy(row + left, source + source_index * item_size, row_bytes);
        std::memset(row + left + row_bytes, 0, target_row - left - row_bytes);
      }
    }
  }
}

}  // namespace

std::array<std::int64_t, 3> StoredCase::location(std::int64_t row) const {
  const auto* at = locations_.data() + row * 3;
  return {at[0], at[1], at[2]};
}

torch::Tensor StoredCase::image() const { return image_->tensor(); }

CodeVolume StoredCase::codes() const { return CodeVolume{codes_->tensor(), num_channels_}; }

torch::Tensor StoredCase::network_input() const {
  if (!prior_) return image();
  torch::Tensor input = torch::empty({num_image_channels_ + prior_channels_, shape_zyx_[0], shape_zyx_[1], shape_zyx_[2]}, torch::kFloat);
  input.narrow(0, 0, num_image_channels_).copy_(image());
  input.narrow(0, num_image_channels_, prior_channels_).copy_(decode_channels(CodeVolume{prior_->tensor(), prior_channels_}));
  return input;
}

std::uint64_t StoredCase::code_word_at(int word, const std::array<std::int64_t, 3>& zyx) const {
  const std::int64_t index =
      ((word * shape_zyx_[0] + zyx[0]) * shape_zyx_[1] + zyx[1]) * shape_zyx_[2] + zyx[2];
  const auto* bytes = static_cast<const unsigned char*>(codes_->data()) + index * code_item_size_;
  std::uint64_t value = 0;  // little-endian, as .npy "<u2" etc. and x86/ARM store it
  std::memcpy(&value, bytes, code_item_size_);
  return value;
}

bool StoredCase::is_ignored(const std::array<std::int64_t, 3>& zyx) const {
  const int bits_per_word = static_cast<int>(code_item_size_ * 8);
  const int word = num_channels_ / bits_per_word;
  const int bit = num_channels_ % bits_per_word;
  return (code_word_at(word, zyx) >> bit) & 1u;
}

PreprocessedStore::PreprocessedStore(std::filesystem::path store_dir) : dir_(std::move(store_dir)) {
  const auto store_file = dir_ / kStoreFile;
  if (!std::filesystem::exists(store_file)) {
    throw Error("no preprocessed store in " + dir_.string() + " (" + kStoreFile + " is missing)",
                "run `mlseg preprocess DATASET -c CONFIG` for this configuration first")
        .located({store_file.string(), "", ""});
  }
  info_ = store_info_from_json(read_json_file(store_file), store_file.string());
  const CodeLayout layout = code_layout(num_channels());
  const std::string expected_descr = npy_descr(layout.dtype, /*as_unsigned=*/true);
  if (info_.code_descr != expected_descr || info_.num_code_words != layout.num_words) {
    throw Error("store.json declares codes \"" + info_.code_descr + "\" x " + std::to_string(info_.num_code_words) +
                    " words, but " + std::to_string(num_channels()) + " channels plus the ignore flag need \"" +
                    expected_descr + "\" x " + std::to_string(layout.num_words),
                kRerunPreprocess)
        .located({store_file.string(), "", ""});
  }
  slots_.reserve(info_.cases.size());
  for (std::size_t i = 0; i < info_.cases.size(); ++i) slots_.push_back(std::make_unique<Slot>());
}

PreprocessedStore::~PreprocessedStore() = default;

void PreprocessedStore::attach_previous_stage(std::filesystem::path prior_dir, int prior_channels) {
  if (prior_channels < 1) throw Error("a cascade needs at least one previous-stage channel", "this is a bug in the caller; report it");
  prior_dir_ = std::move(prior_dir);
  prior_channels_ = prior_channels;
  // Cases opened before are opened again, with their previous-stage prediction.
  for (auto& slot : slots_) slot = std::make_unique<Slot>();
}

std::size_t PreprocessedStore::case_index(const std::string& case_id) const {
  const auto found = std::find(info_.cases.begin(), info_.cases.end(), case_id);
  if (found == info_.cases.end()) {
    throw Error("the store has no case \"" + case_id + "\"", "check the case id or re-run `mlseg preprocess`")
        .located({(dir_ / kStoreFile).string(), case_id, ""});
  }
  return static_cast<std::size_t>(found - info_.cases.begin());
}

const StoredCase& PreprocessedStore::stored_case(std::size_t index) const {
  if (index >= slots_.size()) {
    throw Error("case index " + std::to_string(index) + " is out of range (the store has " +
                    std::to_string(slots_.size()) + " cases)",
                "this is a bug in the caller; report it");
  }
  Slot& slot = *slots_[index];
  if (const StoredCase* opened = slot.opened.load(std::memory_order_acquire)) return *opened;
  std::lock_guard<std::mutex> lock(slot.mutex);
  if (!slot.owned) {
    slot.owned = open_case(index);
    slot.opened.store(slot.owned.get(), std::memory_order_release);
  }
  return *slot.owned;
}

std::unique_ptr<StoredCase> PreprocessedStore::open_case(std::size_t index) const {
  const std::string& id = info_.cases[index];
  auto opened = std::make_unique<StoredCase>();
  StoredCase& c = *opened;
  c.num_image_channels_ = info_.num_image_channels;
  c.num_channels_ = num_channels();
  c.num_code_words_ = info_.num_code_words;

  const auto properties_file = store_properties_file(dir_, id);
  if (!std::filesystem::exists(properties_file)) throw case_error("the case properties file is missing", properties_file, id);
  try {
    c.properties_ = case_properties_from_json(read_json_file(properties_file), properties_file.string());
  } catch (const Error& error) {
    throw error.located({properties_file.string(), id, ""});
  }
  if (c.properties_.case_id != id) {
    throw case_error("CASE.json names case \"" + c.properties_.case_id + "\"", properties_file, id);
  }
  c.shape_zyx_ = c.properties_.shape_after_resample;

  const auto image_file = store_image_file(dir_, id);
  c.image_ = map_case_file(image_file, id);
  const NpyHeader& image = c.image_->header();
  const std::vector<std::int64_t> expected_image{info_.num_image_channels, c.shape_zyx_[0], c.shape_zyx_[1], c.shape_zyx_[2]};
  if (image.descr != "<f4") throw case_error("the image is \"" + image.descr + "\", not float32 (\"<f4\")", image_file, id);
  if (image.shape != expected_image) {
    throw case_error("the image has shape " + shape_text(image.shape) + " but store.json and CASE.json say " +
                         shape_text(expected_image) + " (image channels, shape_after_resample)",
                     image_file, id);
  }

  const auto codes_file = store_codes_file(dir_, id);
  c.codes_ = map_case_file(codes_file, id);
  const NpyHeader& codes = c.codes_->header();
  const std::vector<std::int64_t> expected_codes{info_.num_code_words, c.shape_zyx_[0], c.shape_zyx_[1], c.shape_zyx_[2]};
  if (codes.descr != info_.code_descr) {
    throw case_error("the codes are \"" + codes.descr + "\" but store.json says \"" + info_.code_descr + "\"", codes_file, id);
  }
  if (codes.shape != expected_codes) {
    throw case_error("the codes have shape " + shape_text(codes.shape) + " but the image and CASE.json say " +
                         shape_text(expected_codes) + " (code words, shape_after_resample)",
                     codes_file, id);
  }
  c.code_item_size_ = codes.item_size;

  if (prior_channels_ > 0) {
    const auto prior_file = store_prior_file(prior_dir_, id);
    if (!std::filesystem::exists(prior_file)) {
      throw Error("the previous stage's prediction of this case is missing", "rerun `mlseg train -c 3d_cascade_fullres`, which writes it")
          .located({prior_file.string(), id, ""});
    }
    c.prior_ = map_case_file(prior_file, id);
    const CodeLayout prior_layout = code_layout(prior_channels_);
    const NpyHeader& prior = c.prior_->header();
    const std::vector<std::int64_t> expected_prior{prior_layout.num_words, c.shape_zyx_[0], c.shape_zyx_[1], c.shape_zyx_[2]};
    if (prior.descr != npy_descr(prior_layout.dtype, /*as_unsigned=*/true) || prior.shape != expected_prior) {
      throw Error("the previous stage's prediction is \"" + prior.descr + "\" " + shape_text(prior.shape) + ", the case needs \"" +
                      npy_descr(prior_layout.dtype, true) + "\" " + shape_text(expected_prior),
                  "delete it; `mlseg train -c 3d_cascade_fullres` predicts it again")
          .located({prior_file.string(), id, ""});
    }
    c.prior_channels_ = prior_channels_;
  }

  const auto locations_file = store_locations_file(dir_, id);
  if (!std::filesystem::exists(locations_file)) throw case_error("the file is missing", locations_file, id);
  torch::Tensor locations;
  try {
    locations = read_npy(locations_file);
  } catch (const Error& error) {
    throw error.located({locations_file.string(), id, ""});
  }
  if (locations.scalar_type() != torch::kInt || locations.dim() != 2 || locations.size(1) != 3) {
    throw case_error("the locations are not an int32 [N, 3] array (shape " + shape_text(locations.sizes().vec()) + ")",
                     locations_file, id);
  }
  const std::int64_t rows = locations.size(0);
  const auto* values = locations.data_ptr<std::int32_t>();
  c.locations_.assign(values, values + rows * 3);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (int d = 0; d < 3; ++d) {
      const std::int64_t v = c.locations_[r * 3 + d];
      if (v < 0 || v >= c.shape_zyx_[d]) {
        throw case_error("location row " + std::to_string(r) + " " + zyx_text(c.location(r)) +
                             " lies outside the case shape " + zyx_text(c.shape_zyx_),
                         locations_file, id);
      }
    }
  }
  for (const auto& group : c.properties_.locations) {
    if (group.offset < 0 || group.count < 0 || group.offset + group.count > rows) {
      throw case_error("location group \"" + group.name + "\" covers rows [" + std::to_string(group.offset) + ", " +
                           std::to_string(group.offset + group.count) + ") but the locations file has " +
                           std::to_string(rows) + " rows",
                       properties_file, id);
    }
    if (group.kind == "channel" && (group.channel < 0 || group.channel >= num_channels())) {
      throw case_error("location group \"" + group.name + "\" names channel " + std::to_string(group.channel) +
                           " but the store has " + std::to_string(num_channels()) + " channels",
                       properties_file, id);
    }
  }
  return opened;
}

CutPatch PreprocessedStore::cut_patch(std::size_t index, const std::array<std::int64_t, 3>& begin_zyx,
                                      const std::array<std::int64_t, 3>& size_zyx) const {
  for (int d = 0; d < 3; ++d) {
    if (size_zyx[d] <= 0) {
      throw Error("patch size " + zyx_text(size_zyx) + " has an empty axis", "pass a patch size of at least 1 per axis");
    }
  }
  CutPatch patch;
  cut_patch_into(index, begin_zyx, size_zyx, patch);
  return patch;
}

void PreprocessedStore::cut_patch_into(std::size_t index, const std::array<std::int64_t, 3>& begin_zyx,
                                       const std::array<std::int64_t, 3>& size_zyx, CutPatch& patch) const {
  const CodeLayout layout = code_layout(num_channels());
  if (!patch.image.defined()) patch.image = torch::empty({0}, torch::kFloat);
  if (!patch.codes.words.defined() || patch.codes.words.scalar_type() != layout.dtype) {
    patch.codes.words = torch::empty({0}, layout.dtype);
  }
  patch.image.resize_({num_input_channels(), size_zyx[0], size_zyx[1], size_zyx[2]});
  patch.codes.words.resize_({layout.num_words, size_zyx[0], size_zyx[1], size_zyx[2]});
  patch.codes.num_channels = num_channels();
  cut_patch_into(index, begin_zyx, patch.image, patch.codes.words);
}

void PreprocessedStore::cut_patch_into(std::size_t index, const std::array<std::int64_t, 3>& begin_zyx,
                                       torch::Tensor& image, torch::Tensor& codes) const {
  const StoredCase& c = stored_case(index);
  const CodeLayout layout = code_layout(num_channels());
  const int input_channels = c.num_image_channels_ + c.prior_channels_;
  const bool image_ok = image.dim() == 4 && image.size(0) == input_channels && image.scalar_type() == torch::kFloat &&
                        image.is_contiguous() && image.device().is_cpu();
  const bool codes_ok = codes.dim() == 4 && codes.size(0) == c.num_code_words_ && codes.scalar_type() == layout.dtype &&
                        codes.is_contiguous() && codes.device().is_cpu() && codes.sizes().slice(1) == image.sizes().slice(1);
  if (!image_ok || !codes_ok) {
    throw Error("cut_patch_into needs contiguous CPU tensors: image [" + std::to_string(input_channels) +
                    ", z, y, x] float32 and codes [" + std::to_string(c.num_code_words_) + ", z, y, x] of " +
                    c10::toString(layout.dtype) + " with the same spatial size",
                "allocate the outputs as cut_patch does");
  }
  const std::array<std::int64_t, 3> size_zyx{image.size(1), image.size(2), image.size(3)};
  copy_box(static_cast<const char*>(c.image_->data()), c.shape_zyx_, c.num_image_channels_, sizeof(float), begin_zyx,
           size_zyx, static_cast<char*>(image.data_ptr()));
  copy_box(static_cast<const char*>(c.codes_->data()), c.shape_zyx_, c.num_code_words_, c.code_item_size_, begin_zyx,
           size_zyx, static_cast<char*>(codes.data_ptr()));
  if (c.prior_) {
    // The previous stage's codes cut like the labels (outside: 0), decoded into the image's last
    // channels.
    const std::int64_t words = c.prior_->header().shape[0];
    torch::Tensor cut = torch::empty({words, size_zyx[0], size_zyx[1], size_zyx[2]}, code_layout(c.prior_channels_).dtype);
    copy_box(static_cast<const char*>(c.prior_->data()), c.shape_zyx_, words, cut.element_size(), begin_zyx, size_zyx,
             static_cast<char*>(cut.data_ptr()));
    image.narrow(0, c.num_image_channels_, c.prior_channels_).copy_(decode_channels(CodeVolume{cut, c.prior_channels_}));
  }
}

}  // namespace mlseg
