#include "mlseg/data/training_target.h"

#include "mlseg/core/error.h"
#include "mlseg/metrics/code_words.h"

namespace mlseg {

TargetEncoding parse_target_encoding(const std::string& name) {
  if (name == "sigmoid") return TargetEncoding::sigmoid;
  if (name == "softmax") return TargetEncoding::softmax;
  throw Error("unknown label encoding '" + name + "'", "use sigmoid or softmax");
}

TrainingTarget training_target(const CodeVolume& codes, TargetEncoding encoding) {
  return training_target(codes, TrainingTargetOptions().encoding(encoding));
}

TrainingTarget training_target(const CodeVolume& codes, const TrainingTargetOptions& options) {
  detail::require_code_volume(codes, "training_target");
  const auto shape = codes.shape_zyx();
  const std::int64_t voxels = shape[0] * shape[1] * shape[2], words = codes.words.size(0);
  const int channels = codes.num_channels;
  TrainingTarget result;
  result.annotated = torch::ones({1, shape[0], shape[1], shape[2]}, torch::kFloat32);
  float* annotated = result.annotated.data_ptr<float>();
  const bool softmax = options.encoding() == TargetEncoding::softmax;
  if (softmax) {
    result.target = torch::zeros({1, shape[0], shape[1], shape[2]}, torch::kInt64);
  } else {
    result.target = torch::zeros({channels, shape[0], shape[1], shape[2]}, torch::kFloat32);
  }
  detail::with_code_word_type(codes, [&](auto word) {
    using Word = decltype(word);
    constexpr int kBits = 8 * static_cast<int>(sizeof(Word));
    const Word* code_words = static_cast<const Word*>(codes.words.data_ptr());
    const int ignore_word = channels / kBits, ignore_bit = channels % kBits;
    float* sigmoid_out = softmax ? nullptr : result.target.data_ptr<float>();
    std::int64_t* softmax_out = softmax ? result.target.data_ptr<std::int64_t>() : nullptr;
    for (std::int64_t i = 0; i < voxels; ++i) {
      if ((code_words[ignore_word * voxels + i] >> ignore_bit) & 1) {
        annotated[i] = 0.0f;
        result.has_ignored_voxels = true;
        if (softmax) softmax_out[i] = options.ignore_index();
        continue;
      }
      int first_channel = -1;
      for (std::int64_t w = 0; w < words; ++w) {
        auto bits = static_cast<std::uint64_t>(code_words[w * voxels + i]);
        while (bits != 0) {
          const int channel = static_cast<int>(w) * kBits + detail::count_trailing_zeros(bits);
          bits &= bits - 1;
          if (channel >= channels) continue;  // the ignore flag (unset here) or unused high bits
          if (!softmax) {
            sigmoid_out[channel * voxels + i] = 1.0f;
            continue;
          }
          if (first_channel >= 0) {
            const std::int64_t z = i / (shape[1] * shape[2]), y = (i / shape[2]) % shape[1], x = i % shape[2];
            throw Error("softmax training target: voxel (z " + std::to_string(z) + ", y " + std::to_string(y) + ", x " +
                            std::to_string(x) + ") has overlapping channels " + std::to_string(first_channel) +
                            " and " + std::to_string(channel),
                        "train overlapping labels with the sigmoid encoding (plan --encoding sigmoid)");
          }
          first_channel = channel;
          softmax_out[i] = channel + 1;
        }
      }
    }
  });
  return result;
}

}  // namespace mlseg
