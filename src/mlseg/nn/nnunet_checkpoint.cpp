#include "mlseg/nn/nnunet_checkpoint.h"

#include <torch/torch.h>

#include "mlseg/core/error.h"
#include "mlseg/nn/torch_pickle.h"

namespace mlseg {

namespace {

constexpr const char* kNotNnunetFix =
    "pass the checkpoint_final.pth (or checkpoint_best.pth) of an nnU-Net v2 fold folder (nnUNetTrainer.save_checkpoint)";

}  // namespace

bool is_duplicate_nnunet_key(const std::string& key) {
  return key.rfind("decoder.encoder.", 0) == 0 || key.find(".all_modules.") != std::string::npos;
}

NnunetCheckpoint read_nnunet_checkpoint(const std::filesystem::path& path) {
  using torch_pickle::Kind;
  const torch_pickle::ValuePtr root = torch_pickle::read_torch_save(path);
  const ErrorLocation where{path.string(), "", ""};
  if (!root->is(Kind::dict)) {
    throw Error(std::string("the file holds a ") + torch_pickle::kind_name(root->kind) + ", not nnU-Net's checkpoint dict",
                kNotNnunetFix, where);
  }
  const torch_pickle::Value* weights = root->find("network_weights");
  if (weights == nullptr || !weights->is(Kind::dict)) {
    throw Error("the checkpoint has no network_weights dict (is it an nnU-Net v2 checkpoint?)", kNotNnunetFix, where);
  }
  NnunetCheckpoint checkpoint;
  for (const auto& [key, value] : weights->entries) {
    if (!key->is(Kind::string) || !value->is(Kind::tensor)) {
      throw Error("network_weights has an entry that is not a named tensor", kNotNnunetFix, where);
    }
    if (is_duplicate_nnunet_key(key->text)) continue;
    checkpoint.network_weights.emplace_back(key->text, value->tensor.contiguous());
  }
  if (const auto* trainer = root->find("trainer_name"); trainer != nullptr && trainer->is(Kind::string)) {
    checkpoint.trainer_name = trainer->text;
  }
  if (const auto* axes = root->find("inference_allowed_mirroring_axes"); axes != nullptr && !axes->is(Kind::none)) {
    if (!axes->is(Kind::tuple) && !axes->is(Kind::list)) {
      throw Error("inference_allowed_mirroring_axes is a " + std::string(torch_pickle::kind_name(axes->kind)) + ", not a tuple",
                  kNotNnunetFix, where);
    }
    std::vector<int> list;
    for (const auto& axis : axes->items) {
      if (!axis->is(Kind::integer) || axis->integer < 0 || axis->integer > 2) {
        throw Error("inference_allowed_mirroring_axes holds something other than an axis 0, 1 or 2", kNotNnunetFix, where);
      }
      list.push_back(static_cast<int>(axis->integer));
    }
    checkpoint.inference_allowed_mirroring_axes = list;
  }
  if (const auto* init = root->find("init_args"); init != nullptr) {
    if (const auto* configuration = init->find("configuration"); configuration != nullptr && configuration->is(Kind::string)) {
      checkpoint.configuration = configuration->text;
    }
  }
  if (const auto* epoch = root->find("current_epoch"); epoch != nullptr && epoch->is(Kind::integer)) {
    checkpoint.epochs_trained = epoch->integer;
  }
  return checkpoint;
}

}  // namespace mlseg
