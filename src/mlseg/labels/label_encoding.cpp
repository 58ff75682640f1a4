#include "mlseg/labels/label_encoding.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "mlseg/core/error.h"
#include "mlseg/metrics/code_words.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

std::string code_key(const CombinationCode& code) {
  return std::string(reinterpret_cast<const char*>(code.data()), code.size() * sizeof(std::uint64_t));
}

int words_for(int num_channels) { return (num_channels + 64) / 64; }  // channels + the ignore flag

int bit_count(const CombinationCode& code) {
  int n = 0;
  for (std::uint64_t w : code) n += __builtin_popcountll(w);
  return n;
}

bool is_subset(const CombinationCode& part, const CombinationCode& whole) {
  for (std::size_t w = 0; w < part.size(); ++w) {
    if ((part[w] & ~whole[w]) != 0) return false;
  }
  return true;
}

std::string combination_text(const CombinationCode& code, const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t w = 0; w < code.size(); ++w) {
    for (int b = 0; b < 64; ++b) {
      if ((code[w] >> b) & 1) {
        const std::size_t c = w * 64 + static_cast<std::size_t>(b);
        text += (text.empty() ? "" : "+") + (c < names.size() ? names[c] : "#" + std::to_string(c));
      }
    }
  }
  return text.empty() ? "background" : text;
}

// A code word tensor of the code layout's dtype from uint64 bit patterns.
torch::Tensor word_tensor(const std::vector<std::uint64_t>& values, torch::ScalarType dtype) {
  torch::Tensor t = torch::empty({static_cast<std::int64_t>(values.size())}, torch::kLong);
  std::memcpy(t.data_ptr<std::int64_t>(), values.data(), sizeof(std::uint64_t) * values.size());
  return t.to(dtype);
}

}  // namespace

std::string to_string(EncodingKind kind) {
  switch (kind) {
    case EncodingKind::sigmoid: return "sigmoid";
    case EncodingKind::softmax: return "softmax";
    case EncodingKind::powerset: return "powerset";
  }
  return "?";
}

EncodingKind parse_encoding_kind(const std::string& text, const std::string& source) {
  if (text == "sigmoid") return EncodingKind::sigmoid;
  if (text == "softmax") return EncodingKind::softmax;
  if (text == "powerset") return EncodingKind::powerset;
  throw Error("unknown label encoding '" + text + "'", "use sigmoid, softmax or powerset", {source, "", ""});
}

LabelEncoding LabelEncoding::sigmoid(int num_channels) {
  LabelEncoding e;
  e.kind_ = EncodingKind::sigmoid;
  e.num_channels_ = num_channels;
  return e;
}

LabelEncoding LabelEncoding::softmax(int num_channels) {
  LabelEncoding e = sigmoid(num_channels);
  e.kind_ = EncodingKind::softmax;
  return e;
}

LabelEncoding LabelEncoding::powerset(int num_channels, const std::vector<CombinationCode>& combinations) {
  LabelEncoding e = sigmoid(num_channels);
  e.kind_ = EncodingKind::powerset;
  const int words = words_for(num_channels);
  const CombinationCode background(static_cast<std::size_t>(words), 0);
  e.combinations_.push_back(background);
  for (CombinationCode code : combinations) {
    code.resize(static_cast<std::size_t>(words), 0);
    for (int w = 0; w < words; ++w) {
      const int first_bit_beyond = num_channels - 64 * w;
      if (first_bit_beyond < 64 && first_bit_beyond >= 0 && (code[w] >> first_bit_beyond) != 0) {
        throw Error("a powerset combination sets a bit beyond the " + std::to_string(num_channels) + " channels",
                    "list combinations of the dataset's channels only (plans.json powerset_combinations)");
      }
    }
    if (code == background) continue;
    if (std::find(e.combinations_.begin(), e.combinations_.end(), code) != e.combinations_.end()) {
      throw Error("a powerset combination is listed twice", "list each combination once (plans.json powerset_combinations)");
    }
    e.combinations_.push_back(std::move(code));
  }
  if (e.combinations_.size() > static_cast<std::size_t>(kMaxPowersetClasses)) {
    throw Error(std::to_string(e.combinations_.size()) + " powerset classes (channel combinations) exceed the limit of " +
                    std::to_string(kMaxPowersetClasses),
                "use the sigmoid encoding (mlseg plan --encoding sigmoid), or merge rare combinations (--rare-combos merge)");
  }
  for (std::size_t k = 0; k < e.combinations_.size(); ++k) e.class_by_code_[code_key(e.combinations_[k])] = static_cast<std::int64_t>(k);
  return e;
}

LabelEncoding LabelEncoding::of_kind(EncodingKind kind, int num_channels, const std::vector<CombinationCode>& combinations) {
  switch (kind) {
    case EncodingKind::sigmoid: return sigmoid(num_channels);
    case EncodingKind::softmax: return softmax(num_channels);
    case EncodingKind::powerset: return powerset(num_channels, combinations);
  }
  return sigmoid(num_channels);
}

LabelEncoding LabelEncoding::from_json(const Json& json, const std::vector<std::string>& channel_names, const std::string& source) {
  const int channels = static_cast<int>(channel_names.size());
  std::string name = "sigmoid";
  if (json.contains("label_encoding")) {
    if (!json["label_encoding"].is_string()) {
      throw Error("label_encoding is not a string", "set it to \"sigmoid\", \"softmax\" or \"powerset\"", {source, "", ""});
    }
    name = json["label_encoding"].get<std::string>();
  }
  const EncodingKind kind = parse_encoding_kind(name, source);
  if (kind != EncodingKind::powerset) return of_kind(kind, channels);
  if (!json.contains("powerset_combinations") || !json["powerset_combinations"].is_array()) {
    throw Error("label_encoding is powerset but powerset_combinations is missing or not a list",
                "rerun `mlseg plan --encoding powerset` to write the combination table", {source, "", ""});
  }
  std::vector<CombinationCode> combinations;
  for (const Json& entry : json["powerset_combinations"]) {
    if (!entry.is_array()) {
      throw Error("powerset_combinations has an entry that is not a list of channel names",
                  "write each combination as a list, e.g. [\"organ\", \"lesion\"] ([] = background)", {source, "", ""});
    }
    CombinationCode code(static_cast<std::size_t>(words_for(channels)), 0);
    for (const Json& channel : entry) {
      const auto found = channel.is_string() ? std::find(channel_names.begin(), channel_names.end(), channel.get<std::string>())
                                             : channel_names.end();
      if (found == channel_names.end()) {
        throw Error("powerset_combinations names " + channel.dump() + ", which is not a label channel",
                    "use the names of channel_names", {source, "", ""});
      }
      const auto c = static_cast<std::size_t>(found - channel_names.begin());
      code[c / 64] |= std::uint64_t{1} << (c % 64);
    }
    combinations.push_back(std::move(code));
  }
  try {
    return powerset(channels, combinations);
  } catch (Error& e) {
    throw Error(e.what(), "fix powerset_combinations or rerun `mlseg plan`", {source, "", ""});
  }
}

void LabelEncoding::write_json(Json& json, const std::vector<std::string>& channel_names) const {
  json["label_encoding"] = name();
  if (kind_ != EncodingKind::powerset) {
    json.erase("powerset_combinations");
    return;
  }
  Json list = Json::array();
  for (const CombinationCode& code : combinations_) {
    Json names = Json::array();
    for (std::size_t w = 0; w < code.size(); ++w) {
      for (int b = 0; b < 64; ++b) {
        if ((code[w] >> b) & 1) names.push_back(channel_names.at(w * 64 + static_cast<std::size_t>(b)));
      }
    }
    list.push_back(names);
  }
  json["powerset_combinations"] = list;
}

int LabelEncoding::num_outputs() const {
  switch (kind_) {
    case EncodingKind::sigmoid: return num_channels_;
    case EncodingKind::softmax: return num_channels_ + 1;
    case EncodingKind::powerset: return static_cast<int>(combinations_.size());
  }
  return num_channels_;
}

LossKind LabelEncoding::loss_kind() const {
  switch (kind_) {
    case EncodingKind::sigmoid: return LossKind::bce_and_dice;
    case EncodingKind::softmax: return LossKind::ce_and_dice;
    case EncodingKind::powerset: return LossKind::ce_and_marginal_dice;
  }
  return LossKind::bce_and_dice;
}

LabelResampling LabelEncoding::label_resampling() const {
  return kind_ == EncodingKind::sigmoid ? LabelResampling::per_channel_bit : LabelResampling::most_likely_combination;
}

DefaultExport LabelEncoding::default_export() const {
  return kind_ == EncodingKind::softmax ? DefaultExport::label_map : DefaultExport::channel_code;
}

torch::Tensor LabelEncoding::membership() const {
  const auto classes = static_cast<std::int64_t>(combinations_.size());
  torch::Tensor m = torch::zeros({classes, num_channels_}, torch::kFloat32);
  float* data = m.data_ptr<float>();
  for (std::int64_t k = 0; k < classes; ++k) {
    for (int c = 0; c < num_channels_; ++c) {
      if ((combinations_[static_cast<std::size_t>(k)][c / 64] >> (c % 64)) & 1) data[k * num_channels_ + c] = 1.0f;
    }
  }
  return m;
}

std::int64_t LabelEncoding::class_of(const CombinationCode& code) const {
  const auto found = class_by_code_.find(code_key(code));
  if (found != class_by_code_.end()) return found->second;
  // The largest listed subset (rare-combination merge's rule); background (class 0) always is one.
  std::int64_t best = 0;
  int best_bits = 0;
  for (std::size_t k = 1; k < combinations_.size(); ++k) {
    const int bits = bit_count(combinations_[k]);
    if (bits > best_bits && is_subset(combinations_[k], code)) {
      best = static_cast<std::int64_t>(k);
      best_bits = bits;
    }
  }
  return best;
}

TrainingTarget LabelEncoding::training_target(const CodeVolume& codes) const {
  detail::require_code_volume(codes, "training_target");
  if (codes.num_channels != num_channels_) {
    throw Error("the label codes have " + std::to_string(codes.num_channels) + " channels, the encoding " +
                    std::to_string(num_channels_),
                "train with the plans and store of one dataset");
  }
  const auto shape = codes.shape_zyx();
  const std::int64_t voxels = shape[0] * shape[1] * shape[2], words = codes.words.size(0);
  const int channels = num_channels_;
  TrainingTarget result;
  result.annotated = torch::ones({1, shape[0], shape[1], shape[2]}, torch::kFloat32);
  float* annotated = result.annotated.data_ptr<float>();
  const bool classes = outputs_are_classes();
  result.target = classes ? torch::zeros({1, shape[0], shape[1], shape[2]}, torch::kInt64)
                          : torch::zeros({channels, shape[0], shape[1], shape[2]}, torch::kFloat32);
  detail::with_code_word_type(codes, [&](auto word) {
    using Word = decltype(word);
    constexpr int kBits = 8 * static_cast<int>(sizeof(Word));
    const Word* code_words = static_cast<const Word*>(codes.words.data_ptr());
    const int ignore_word = channels / kBits, ignore_bit = channels % kBits;
    float* sigmoid_out = classes ? nullptr : result.target.data_ptr<float>();
    std::int64_t* class_out = classes ? result.target.data_ptr<std::int64_t>() : nullptr;
    // powerset: codes are looked up once per distinct value (runs of one code are the rule).
    std::unordered_map<std::string, std::int64_t> seen;
    CombinationCode code(static_cast<std::size_t>(words_for(channels)), 0);
    for (std::int64_t i = 0; i < voxels; ++i) {
      if ((code_words[ignore_word * voxels + i] >> ignore_bit) & 1) {
        annotated[i] = 0.0f;
        result.has_ignored_voxels = true;
        if (classes) class_out[i] = kIgnoreClassIndex;
        continue;
      }
      if (kind_ == EncodingKind::powerset) {
        std::fill(code.begin(), code.end(), 0);
        for (std::int64_t w = 0; w < words; ++w) {
          const auto bits = static_cast<std::uint64_t>(code_words[w * voxels + i]);
          for (int b = 0; b < kBits; ++b) {
            const int channel = static_cast<int>(w) * kBits + b;
            if (channel < channels && ((bits >> b) & 1)) code[channel / 64] |= std::uint64_t{1} << (channel % 64);
          }
        }
        const std::string key = code_key(code);
        auto it = seen.find(key);
        if (it == seen.end()) it = seen.emplace(key, class_of(code)).first;
        class_out[i] = it->second;
        continue;
      }
      int first_channel = -1;
      for (std::int64_t w = 0; w < words; ++w) {
        auto bits = static_cast<std::uint64_t>(code_words[w * voxels + i]);
        while (bits != 0) {
          const int channel = static_cast<int>(w) * kBits + detail::count_trailing_zeros(bits);
          bits &= bits - 1;
          if (channel >= channels) continue;  // the ignore flag (unset here) or unused high bits
          if (!classes) {
            sigmoid_out[channel * voxels + i] = 1.0f;
            continue;
          }
          if (first_channel >= 0) {
            const std::int64_t z = i / (shape[1] * shape[2]), y = (i / shape[2]) % shape[1], x = i % shape[2];
            throw Error("softmax training target: voxel (z " + std::to_string(z) + ", y " + std::to_string(y) + ", x " +
                            std::to_string(x) + ") has overlapping channels " + std::to_string(first_channel) + " and " +
                            std::to_string(channel),
                        "train overlapping labels with the sigmoid or powerset encoding (plan --encoding sigmoid|powerset)");
          }
          first_channel = channel;
          class_out[i] = channel + 1;
        }
      }
    }
  });
  return result;
}

torch::Tensor LabelEncoding::probabilities(const torch::Tensor& logits, std::int64_t class_dim) const {
  return outputs_are_classes() ? torch::softmax(logits, class_dim) : torch::sigmoid(logits);
}

torch::Tensor LabelEncoding::channel_probabilities(const torch::Tensor& probabilities, std::int64_t class_dim) const {
  switch (kind_) {
    case EncodingKind::sigmoid: return probabilities;
    case EncodingKind::softmax: return probabilities.narrow(class_dim, 1, probabilities.size(class_dim) - 1);
    case EncodingKind::powerset: {
      // Σ_k p_k · member[k, c], with the class axis moved last for the matrix product.
      const torch::Tensor moved = probabilities.movedim(class_dim, -1);
      const torch::Tensor marginals = torch::matmul(moved, membership().to(probabilities.device(), probabilities.scalar_type()));
      return marginals.movedim(-1, class_dim);
    }
  }
  return probabilities;
}

torch::Tensor LabelEncoding::channel_masks_from_logits(const torch::Tensor& logits) const {
  if (kind_ == EncodingKind::sigmoid) return (logits > 0).to(torch::kUInt8);
  const torch::Tensor index = logits.argmax(1, /*keepdim=*/true);  // [B, 1, ...]
  if (kind_ == EncodingKind::softmax) {
    const std::int64_t classes = logits.size(1);
    std::vector<std::int64_t> view(static_cast<std::size_t>(logits.dim()), 1);
    view[1] = classes - 1;
    const torch::Tensor labels = torch::arange(1, classes, index.options()).view(view);
    return (index == labels).to(torch::kUInt8);
  }
  // powerset: the argmax class's membership row, channels moved to axis 1.
  const torch::Tensor table = membership().to(logits.device(), torch::kUInt8);  // [K, C]
  const torch::Tensor rows = table.index_select(0, index.flatten());             // [N, C]
  auto shape = index.sizes().vec();
  shape.erase(shape.begin() + 1);
  shape.push_back(num_channels_);
  return rows.view(shape).movedim(-1, 1).contiguous();
}

CodeVolume LabelEncoding::code_from_outputs(const torch::Tensor& outputs, bool are_logits) const {
  if (outputs.dim() != 4 || outputs.size(0) != num_outputs()) {
    throw Error("the network outputs have shape " + c10::str(outputs.sizes()) + ", the " + name() + " encoding expects " +
                    std::to_string(num_outputs()) + " outputs [K, Z, Y, X]",
                "predict with the checkpoint's own plans and encoding");
  }
  const CodeLayout layout = code_layout(num_channels_);
  CodeVolume code;
  code.num_channels = num_channels_;
  if (kind_ == EncodingKind::sigmoid) {
    const torch::Tensor masks = are_logits ? outputs > 0 : outputs > 0.5;
    code.words = torch::zeros({layout.num_words, outputs.size(1), outputs.size(2), outputs.size(3)}, torch::kLong);
    for (int c = 0; c < num_channels_; ++c) {
      const std::uint64_t bit = std::uint64_t{1} << (c % 64);
      code.words[c / 64].bitwise_or_(masks[c].to(torch::kLong) * static_cast<std::int64_t>(bit));
    }
    code.words = code.words.to(layout.dtype).contiguous();
    return code;
  }
  const torch::Tensor classes = outputs.argmax(0).to(torch::kCPU);  // [Z, Y, X]
  std::vector<torch::Tensor> words;
  for (int w = 0; w < layout.num_words; ++w) {
    std::vector<std::uint64_t> table(static_cast<std::size_t>(num_outputs()), 0);
    for (int k = 0; k < num_outputs(); ++k) {
      if (kind_ == EncodingKind::softmax) {
        const int channel = k - 1;
        if (k > 0 && channel / 64 == w) table[static_cast<std::size_t>(k)] = std::uint64_t{1} << (channel % 64);
      } else {
        const CombinationCode& c = combinations_[static_cast<std::size_t>(k)];
        table[static_cast<std::size_t>(k)] = static_cast<std::size_t>(w) < c.size() ? c[static_cast<std::size_t>(w)] : 0;
      }
    }
    words.push_back(word_tensor(table, torch::kLong).index_select(0, classes.flatten()).view(classes.sizes()));
  }
  code.words = torch::stack(words).to(layout.dtype).contiguous();
  return code;
}

double LabelEncoding::outside_value(std::int64_t output) const { return outputs_are_classes() && output == 0 ? 1.0 : 0.0; }

}  // namespace mlseg
