#pragma once
// Reads a file written by Python's torch.save (the zip format, PyTorch >= 1.6): `data.pkl`, a
// Python pickle, and one record per tensor storage (`data/<key>`). nnU-Net v2 checkpoints
// (`checkpoint_final.pth`) are such files. LibTorch's own pickle reader cannot rebuild
// collections.OrderedDict, numpy scalars or torch.device, all of which nnU-Net stores; this reader
// builds a tree of plain values instead and never runs code: a class it does not know becomes an
// `object` value holding its name and arguments.
//
// Understood: every opcode of pickle protocols 2-5 (0/1 text opcodes for ints, floats and the memo
// too); tensors (`torch._utils._rebuild_tensor[_v2]`, `_rebuild_parameter`), OrderedDict, set,
// bytes as `_codecs.encode`, numpy scalars (`numpy.core.multiarray.scalar`). Everything read is
// checked against the file (lengths, memo keys, storage sizes and tensor extents), so a damaged
// file gives an mlseg::Error naming it, never a crash or an allocation sized by a corrupt header.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mlseg::torch_pickle {

enum class Kind { none, boolean, integer, floating, string, bytes, list, tuple, dict, tensor, global, object };

/// "none", "bool", "int", ... for messages.
const char* kind_name(Kind kind);

struct Value;
using ValuePtr = std::shared_ptr<Value>;

/// One pickled Python value. Lists and dicts are shared (the pickle memo may refer to one object
/// twice); tuples, sets and frozensets are read as `tuple` and `list`.
struct Value {
  Kind kind = Kind::none;
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0.0;
  /// string (UTF-8), bytes, the "module.name" of a global or an object's class.
  std::string text;
  /// list and tuple elements; an object's constructor arguments.
  std::vector<ValuePtr> items;
  /// dict entries in insertion order.
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;
  /// tensor: a view of its storage (CPU), as torch.load gives it.
  torch::Tensor tensor;
  /// object: what BUILD (__setstate__) gave it, or null.
  ValuePtr state;

  bool is(Kind k) const { return kind == k; }
  /// The value of a string key of a dict; null when absent or when this is not a dict.
  const Value* find(const std::string& key) const;
  /// int, bool or float as a double; throws std::invalid_argument otherwise.
  double number() const;
};

/// The pickled root object of a torch.save file. Throws mlseg::Error naming `path` when it is
/// missing, not a zip archive of torch.save (the legacy pre-1.6 format is named as such, with
/// the fix), or damaged.
ValuePtr read_torch_save(const std::filesystem::path& path);

/// The bytes of the storage record `data/<key>`, as a 1-D uint8 CPU tensor; throws mlseg::Error
/// when there is none.
using RecordLoader = std::function<torch::Tensor(const std::string& key)>;

/// The same for a pickle already in memory; `source` names it in errors.
ValuePtr unpickle(const std::uint8_t* data, std::size_t size, const RecordLoader& load_record, const std::string& source);

}  // namespace mlseg::torch_pickle
