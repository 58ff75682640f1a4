#include "mlseg/nn/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <unordered_map>

#include "mlseg/core/error.h"

namespace mlseg::torch_pickle {
namespace fs = std::filesystem;

namespace {

constexpr const char* kDamagedFix =
    "the file is damaged or was not written by torch.save: copy it again from its source (compare its size or checksum)";
/// Nesting and memo bounds: a genuine checkpoint stays far below them, a corrupt one cannot
/// make the reader grow without end.
constexpr std::size_t kMaxStackDepth = 1 << 20;

ValuePtr make(Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

ValuePtr make_integer(std::int64_t i) {
  ValuePtr v = make(Kind::integer);
  v->integer = i;
  return v;
}

ValuePtr make_floating(double d) {
  ValuePtr v = make(Kind::floating);
  v->floating = d;
  return v;
}

ValuePtr make_text(Kind kind, std::string text) {
  ValuePtr v = make(kind);
  v->text = std::move(text);
  return v;
}

struct StorageType {
  const char* name;
  torch::ScalarType dtype;
};

// torch.save names a storage by its legacy typed class (torch.FloatStorage, ...).
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", torch::kFloat},   {"torch.DoubleStorage", torch::kDouble}, {"torch.HalfStorage", torch::kHalf},
    {"torch.BFloat16Storage", torch::kBFloat16}, {"torch.LongStorage", torch::kLong}, {"torch.IntStorage", torch::kInt},
    {"torch.ShortStorage", torch::kShort},   {"torch.CharStorage", torch::kChar},     {"torch.ByteStorage", torch::kByte},
    {"torch.BoolStorage", torch::kBool},
};

// numpy dtype strings as numpy pickles them ('f8', 'i8', ...): the scalar's byte count and kind.
struct NumpyScalarType {
  const char* code;
  std::size_t bytes;
  char kind;  // 'f' float, 'i' signed, 'u' unsigned, 'b' bool
};
constexpr NumpyScalarType kNumpyScalars[] = {{"f8", 8, 'f'}, {"f4", 4, 'f'}, {"i8", 8, 'i'}, {"i4", 4, 'i'}, {"i2", 2, 'i'},
                                             {"i1", 1, 'i'}, {"u8", 8, 'u'}, {"u4", 4, 'u'}, {"u2", 2, 'u'}, {"u1", 1, 'u'},
                                             {"b1", 1, 'b'}};

class Unpickler {
 public:
  Unpickler(const std::uint8_t* data, std::size_t size, const RecordLoader& load_record, std::string source)
      : data_(data), size_(size), load_record_(load_record), source_(std::move(source)) {}

  ValuePtr run() {
    while (true) {
      const std::uint8_t op = byte();
      if (op == '.') {  // STOP
        if (stack_.size() != 1) fail("the pickle ends with " + std::to_string(stack_.size()) + " values on its stack, not 1");
        return stack_.back();
      }
      step(op);
      if (stack_.size() > kMaxStackDepth || marks_.size() > kMaxStackDepth) fail("the pickle nests deeper than any checkpoint");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw Error("cannot read the pickled data (" + problem + ", at byte " + std::to_string(pos_) + ")", kDamagedFix,
                {source_, "", ""});
  }

  // ---------------------------------------------------------------- reading bytes
  void need(std::size_t n) const {
    if (n > size_ - pos_) fail("it ends in the middle of a value");
  }
  std::uint8_t byte() {
    need(1);
    return data_[pos_++];
  }
  std::uint64_t little_endian(std::size_t n) {
    need(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string bytes(std::uint64_t n) {
    if (n > size_ - pos_) fail("a string of " + std::to_string(n) + " bytes runs past the end");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  std::string line() {
    const auto* begin = data_ + pos_;
    const auto* end = static_cast<const std::uint8_t*>(std::memchr(begin, '\n', size_ - pos_));
    if (end == nullptr) fail("a text field has no end of line");
    std::string s(reinterpret_cast<const char*>(begin), static_cast<std::size_t>(end - begin));
    pos_ += s.size() + 1;
    return s;
  }

  // ---------------------------------------------------------------- the stack
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("an opcode needs more values than there are");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty()) fail("an opcode needs a value and the stack is empty");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("a MARK is missing");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) fail("a MARK points past the stack");
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr tuple(std::vector<ValuePtr> items) {
    ValuePtr t = make(Kind::tuple);
    t->items = std::move(items);
    return t;
  }
  void memo_put(std::uint64_t key) { memo_[key] = top(); }
  void memo_get(std::uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo entry " + std::to_string(key) + " is used before it is stored");
    push(it->second);
  }

  void add_to_list(const ValuePtr& list, std::vector<ValuePtr> items) {
    if (!list->is(Kind::list)) fail("APPEND to a " + std::string(kind_name(list->kind)) + ", not a list");
    for (auto& item : items) list->items.push_back(std::move(item));
  }
  void add_to_dict(const ValuePtr& dict, std::vector<ValuePtr> flat) {
    if (!dict->is(Kind::dict)) fail("SETITEM on a " + std::string(kind_name(dict->kind)) + ", not a dict");
    if (flat.size() % 2 != 0) fail("SETITEMS with an odd number of values");
    for (std::size_t i = 0; i < flat.size(); i += 2) {
      bool replaced = false;
      for (auto& entry : dict->entries) {
        if (entry.first->is(Kind::string) && flat[i]->is(Kind::string) && entry.first->text == flat[i]->text) {
          entry.second = flat[i + 1];
          replaced = true;
          break;
        }
      }
      if (!replaced) dict->entries.emplace_back(flat[i], flat[i + 1]);
    }
  }

  // ---------------------------------------------------------------- one opcode
  void step(std::uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const std::uint8_t protocol = byte();
        if (protocol > 5) fail("pickle protocol " + std::to_string(protocol) + " is newer than 5");
        return;
      }
      case 0x95: little_endian(8); return;  // FRAME: a length hint only
      case '(': marks_.push_back(stack_.size()); return;
      case '0': pop(); return;
      case '1': pop_to_mark(); return;
      case '2': push(top()); return;
      case 'N': push(make(Kind::none)); return;
      case 0x88:
      case 0x89: {
        ValuePtr v = make(Kind::boolean);
        v->boolean = op == 0x88;
        push(v);
        return;
      }
      case 'J': push(make_integer(static_cast<std::int32_t>(little_endian(4)))); return;
      case 'K': push(make_integer(static_cast<std::int64_t>(little_endian(1)))); return;
      case 'M': push(make_integer(static_cast<std::int64_t>(little_endian(2)))); return;
      case 0x8a:
      case 0x8b: {  // LONG1, LONG4: little-endian two's complement of n bytes
        const std::uint64_t n = little_endian(op == 0x8a ? 1 : 4);
        if (n > 8) fail("an integer of " + std::to_string(n) + " bytes (more than 64 bits)");
        std::uint64_t v = little_endian(static_cast<std::size_t>(n));
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1U) v |= ~std::uint64_t{0} << (8 * n);
        push(make_integer(static_cast<std::int64_t>(v)));
        return;
      }
      case 'I':
      case 'L': {  // INT, LONG (text)
        std::string text = line();
        if (!text.empty() && text.back() == 'L') text.pop_back();
        if (text == "00" || text == "01") {
          ValuePtr v = make(Kind::boolean);
          v->boolean = text == "01";
          push(v);
          return;
        }
        try {
          push(make_integer(std::stoll(text)));
        } catch (const std::exception&) {
          fail("the integer '" + text.substr(0, 40) + "'");
        }
        return;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        need(8);
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | data_[pos_ + i];
        pos_ += 8;
        double d = 0.0;
        std::memcpy(&d, &bits, sizeof d);
        push(make_floating(d));
        return;
      }
      case 'F': {  // FLOAT (text)
        const std::string text = line();
        try {
          push(make_floating(std::stod(text)));
        } catch (const std::exception&) {
          fail("the float '" + text.substr(0, 40) + "'");
        }
        return;
      }
      case 'X': push(make_text(Kind::string, bytes(little_endian(4)))); return;
      case 0x8c: push(make_text(Kind::string, bytes(little_endian(1)))); return;
      case 0x8d: push(make_text(Kind::string, bytes(little_endian(8)))); return;
      case 'T': push(make_text(Kind::string, bytes(little_endian(4)))); return;  // BINSTRING (Python 2 str)
      case 'U': push(make_text(Kind::string, bytes(little_endian(1)))); return;
      case 'B': push(make_text(Kind::bytes, bytes(little_endian(4)))); return;
      case 'C': push(make_text(Kind::bytes, bytes(little_endian(1)))); return;
      case 0x8e:
      case 0x96: push(make_text(Kind::bytes, bytes(little_endian(8)))); return;  // BINBYTES8, BYTEARRAY8
      case ']': push(make(Kind::list)); return;
      case 'l': {
        ValuePtr list = make(Kind::list);
        list->items = pop_to_mark();
        push(list);
        return;
      }
      case 'a': {
        ValuePtr item = pop();
        add_to_list(top(), {std::move(item)});
        return;
      }
      case 'e': {
        std::vector<ValuePtr> items = pop_to_mark();
        add_to_list(top(), std::move(items));
        return;
      }
      case ')': push(tuple({})); return;
      case 't': push(tuple(pop_to_mark())); return;
      case 0x85:
      case 0x86:
      case 0x87: {
        const int n = op - 0x84;
        std::vector<ValuePtr> items(static_cast<std::size_t>(n));
        for (int i = n - 1; i >= 0; --i) items[static_cast<std::size_t>(i)] = pop();
        push(tuple(std::move(items)));
        return;
      }
      case '}': push(make(Kind::dict)); return;
      case 'd': {
        ValuePtr dict = make(Kind::dict);
        add_to_dict(dict, pop_to_mark());
        push(dict);
        return;
      }
      case 's': {
        ValuePtr value = pop();
        ValuePtr key = pop();
        add_to_dict(top(), {std::move(key), std::move(value)});
        return;
      }
      case 'u': {
        std::vector<ValuePtr> flat = pop_to_mark();
        add_to_dict(top(), std::move(flat));
        return;
      }
      case 0x8f: push(make(Kind::list)); return;  // EMPTY_SET
      case 0x90: {                                 // ADDITEMS
        std::vector<ValuePtr> items = pop_to_mark();
        add_to_list(top(), std::move(items));
        return;
      }
      case 0x91: {  // FROZENSET
        ValuePtr list = make(Kind::list);
        list->items = pop_to_mark();
        push(list);
        return;
      }
      case 'c': {  // GLOBAL module\nname\n
        std::string module = line();
        std::string name = line();
        push(make_text(Kind::global, module + "." + name));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop();
        ValuePtr module = pop();
        if (!name->is(Kind::string) || !module->is(Kind::string)) fail("STACK_GLOBAL without two strings");
        push(make_text(Kind::global, module->text + "." + name->text));
        return;
      }
      case 'R':
      case 0x81: {  // REDUCE callable(*args), NEWOBJ cls.__new__(cls, *args)
        ValuePtr args = pop();
        ValuePtr callable = pop();
        if (!args->is(Kind::tuple)) fail("REDUCE arguments are a " + std::string(kind_name(args->kind)) + ", not a tuple");
        push(call(callable, args->items));
        return;
      }
      case 0x92: {  // NEWOBJ_EX cls, args, kwargs
        pop();
        ValuePtr args = pop();
        ValuePtr callable = pop();
        if (!args->is(Kind::tuple)) fail("NEWOBJ_EX arguments are not a tuple");
        push(call(callable, args->items));
        return;
      }
      case 'b': {  // BUILD: obj.__setstate__(state)
        ValuePtr state = pop();
        ValuePtr& object = top();
        // An OrderedDict's state is its _metadata attribute (state_dict), a tensor's its hooks:
        // neither matters here. Objects keep theirs.
        if (object->is(Kind::object)) object->state = std::move(state);
        return;
      }
      case 'q': memo_put(little_endian(1)); return;
      case 'r': memo_put(little_endian(4)); return;
      case 0x94: memo_put(memo_.size()); return;  // MEMOIZE
      case 'p': memo_put(text_index()); return;
      case 'h': memo_get(little_endian(1)); return;
      case 'j': memo_get(little_endian(4)); return;
      case 'g': memo_get(text_index()); return;
      case 'Q': {  // BINPERSID
        ValuePtr pid = pop();
        push(persistent_load(*pid));
        return;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unknown pickle opcode ") + hex);
      }
    }
  }

  std::uint64_t text_index() {
    const std::string text = line();
    try {
      return std::stoull(text);
    } catch (const std::exception&) {
      fail("the memo index '" + text.substr(0, 40) + "'");
    }
  }

  // ---------------------------------------------------------------- storages and tensors
  ValuePtr persistent_load(const Value& pid) {
    // ('storage', storage_type, key, location, numel)
    if (!pid.is(Kind::tuple) || pid.items.size() < 5 || !pid.items[0]->is(Kind::string) || pid.items[0]->text != "storage") {
      fail("a persistent reference that is not a tensor storage");
    }
    const Value& type = *pid.items[1];
    const Value& key = *pid.items[2];
    const Value& numel = *pid.items[4];
    if (!type.is(Kind::global) || !key.is(Kind::string) || !numel.is(Kind::integer) || numel.integer < 0) {
      fail("a storage reference of the wrong form");
    }
    auto cached = storages_.find(key.text);
    if (cached != storages_.end()) return cached->second;
    torch::ScalarType dtype = torch::kFloat;
    bool known = false;
    for (const StorageType& t : kStorageTypes) {
      if (type.text == t.name) {
        dtype = t.dtype;
        known = true;
      }
    }
    if (!known) {
      throw Error("a tensor storage of type " + type.text + ", which mlseg does not read",
                  "save the weights as float, half, bfloat16 or integer tensors", {source_, "", ""});
    }
    const torch::Tensor bytes = load_record_(key.text);
    const std::int64_t element = static_cast<std::int64_t>(c10::elementSize(dtype));
    // Compared by division: the header's count may be anything, its product could overflow.
    if (bytes.numel() % element != 0 || bytes.numel() / element != numel.integer) {
      fail("storage " + key.text + " holds " + std::to_string(bytes.numel()) + " bytes, its header says " +
           std::to_string(numel.integer) + " elements of " + std::to_string(element) + " bytes");
    }
    ValuePtr storage = make(Kind::tensor);
    storage->text = "storage";
    storage->tensor = numel.integer == 0 ? torch::empty({0}, torch::TensorOptions().dtype(dtype)) : bytes.view(dtype);
    storages_.emplace(key.text, storage);
    return storage;
  }

  static bool int_list(const Value& v, std::vector<std::int64_t>& out) {
    if (!v.is(Kind::tuple) && !v.is(Kind::list)) return false;
    out.clear();
    for (const auto& item : v.items) {
      if (!item->is(Kind::integer) || item->integer < 0) return false;
      out.push_back(item->integer);
    }
    return true;
  }

  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args) {
    // (storage, storage_offset, size, stride, ...)
    if (args.size() < 4 || !args[0]->is(Kind::tensor) || !args[1]->is(Kind::integer)) fail("a tensor with malformed arguments");
    std::vector<std::int64_t> size, stride;
    if (!int_list(*args[2], size) || !int_list(*args[3], stride) || size.size() != stride.size()) {
      fail("a tensor whose size and stride do not match");
    }
    const torch::Tensor& storage = args[0]->tensor;
    const std::int64_t offset = args[1]->integer;
    // Every element the view reaches must lie inside the storage, and the view may not hold more
    // elements than the storage (a stride-0 view of a corrupt size would be materialised later).
    const std::int64_t numel = storage.numel();
    bool empty = false;
    for (std::int64_t s : size) empty = empty || s == 0;
    if (offset < 0 || (!empty && offset >= numel)) fail("a tensor starts past its storage");
    std::int64_t last = offset, count = 1;
    for (std::size_t i = 0; i < size.size() && !empty; ++i) {
      if (size[i] > numel || count > numel / size[i]) fail("a tensor has more elements than its storage");
      count *= size[i];
      if (size[i] > 1 && stride[i] > 0) {
        if (stride[i] >= numel || size[i] - 1 > (numel - 1 - last) / stride[i]) fail("a tensor reaches past its storage");
        last += (size[i] - 1) * stride[i];
      }
    }
    ValuePtr tensor = make(Kind::tensor);
    tensor->tensor = empty ? torch::empty(size, storage.options()) : storage.as_strided(size, stride, offset);
    return tensor;
  }

  ValuePtr numpy_scalar(const std::vector<ValuePtr>& args) {
    // (dtype, bytes): dtype = numpy.dtype('f8', ...) with its state
    if (args.size() != 2 || !args[0]->is(Kind::object) || args[0]->items.empty() || !args[0]->items[0]->is(Kind::string) ||
        !args[1]->is(Kind::bytes)) {
      return generic_object("numpy.core.multiarray.scalar", args);
    }
    const std::string code = args[0]->items[0]->text;
    const std::string& raw = args[1]->text;
    // A big-endian dtype says so in its state: (version, '>', ...).
    const Value* state = args[0]->state.get();
    const bool big_endian = state != nullptr && state->is(Kind::tuple) && state->items.size() > 1 &&
                            state->items[1]->is(Kind::string) && state->items[1]->text == ">";
    for (const NumpyScalarType& t : kNumpyScalars) {
      if (code != t.code || raw.size() != t.bytes || big_endian) continue;
      std::uint64_t bits = 0;
      for (std::size_t i = 0; i < t.bytes; ++i) bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(raw[i])) << (8 * i);
      if (t.kind == 'f') {
        if (t.bytes == 8) {
          double d = 0.0;
          std::memcpy(&d, &bits, 8);
          return make_floating(d);
        }
        float f = 0.0F;
        const auto b32 = static_cast<std::uint32_t>(bits);
        std::memcpy(&f, &b32, 4);
        return make_floating(f);
      }
      if (t.kind == 'b') {
        ValuePtr v = make(Kind::boolean);
        v->boolean = bits != 0;
        return v;
      }
      if (t.kind == 'i' && t.bytes < 8 && (bits >> (8 * t.bytes - 1)) & 1U) bits |= ~std::uint64_t{0} << (8 * t.bytes);
      return make_integer(static_cast<std::int64_t>(bits));
    }
    return generic_object("numpy.core.multiarray.scalar", args);
  }

  // Python 2-compatible bytes: _codecs.encode(text, 'latin1'), each code point one byte.
  ValuePtr latin1_bytes(const std::vector<ValuePtr>& args) {
    if (args.empty() || !args[0]->is(Kind::string)) fail("_codecs.encode without a string");
    const std::string& utf8 = args[0]->text;
    std::string out;
    for (std::size_t i = 0; i < utf8.size(); ++i) {
      const auto c = static_cast<unsigned char>(utf8[i]);
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else if ((c & 0xE0) == 0xC0 && i + 1 < utf8.size()) {
        const unsigned code = ((c & 0x1FU) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3FU);
        if (code > 0xFF) fail("_codecs.encode of a character beyond latin-1");
        out.push_back(static_cast<char>(code));
        ++i;
      } else {
        fail("_codecs.encode of a character beyond latin-1");
      }
    }
    return make_text(Kind::bytes, std::move(out));
  }

  static ValuePtr generic_object(const std::string& name, std::vector<ValuePtr> args) {
    ValuePtr object = make_text(Kind::object, name);
    object->items = std::move(args);
    return object;
  }

  ValuePtr call(const ValuePtr& callable, const std::vector<ValuePtr>& args) {
    if (!callable->is(Kind::global)) fail("a call of a " + std::string(kind_name(callable->kind)) + ", not a class or function");
    const std::string& name = callable->text;
    if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict") {
      ValuePtr dict = make(Kind::dict);
      if (!args.empty() && (args[0]->is(Kind::list) || args[0]->is(Kind::tuple))) {
        for (const auto& pair : args[0]->items) {
          if (!pair->is(Kind::tuple) && !pair->is(Kind::list)) fail("OrderedDict built from something other than pairs");
          if (pair->items.size() != 2) fail("OrderedDict built from something other than pairs");
          add_to_dict(dict, {pair->items[0], pair->items[1]});
        }
      }
      return dict;
    }
    if (name == "builtins.set" || name == "builtins.frozenset" || name == "__builtin__.set" || name == "builtins.list") {
      ValuePtr list = make(Kind::list);
      if (!args.empty() && (args[0]->is(Kind::list) || args[0]->is(Kind::tuple))) list->items = args[0]->items;
      return list;
    }
    if (name == "_codecs.encode") return latin1_bytes(args);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") return rebuild_tensor(args);
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (args.empty() || !args[0]->is(Kind::tensor)) fail("a Parameter without a tensor");
      return args[0];
    }
    if (name == "numpy.core.multiarray.scalar" || name == "numpy._core.multiarray.scalar") return numpy_scalar(args);
    return generic_object(name, args);
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  const RecordLoader& load_record_;
  std::string source_;
  std::vector<ValuePtr> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, ValuePtr> memo_;
  std::unordered_map<std::string, ValuePtr> storages_;
};

bool starts_with_bytes(const fs::path& path, const std::string& magic) {
  std::ifstream in(path, std::ios::binary);
  std::string head(magic.size(), '\0');
  return in.read(head.data(), static_cast<std::streamsize>(head.size())) && head == magic;
}

torch::Tensor owned_bytes(at::DataPtr data, std::size_t size) {
  auto holder = std::make_shared<at::DataPtr>(std::move(data));
  void* raw = holder->get();
  return torch::from_blob(
      raw, {static_cast<std::int64_t>(size)}, [holder](void*) mutable { holder.reset(); }, torch::TensorOptions().dtype(torch::kByte));
}

}  // namespace

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::list: return "list";
    case Kind::tuple: return "tuple";
    case Kind::dict: return "dict";
    case Kind::tensor: return "tensor";
    case Kind::global: return "class";
    case Kind::object: return "object";
  }
  return "value";
}

const Value* Value::find(const std::string& key) const {
  if (kind != Kind::dict) return nullptr;
  for (const auto& [k, v] : entries) {
    if (k->is(Kind::string) && k->text == key) return v.get();
  }
  return nullptr;
}

double Value::number() const {
  switch (kind) {
    case Kind::boolean: return boolean ? 1.0 : 0.0;
    case Kind::integer: return static_cast<double>(integer);
    case Kind::floating: return floating;
    default: throw std::invalid_argument(std::string("a ") + kind_name(kind) + " is not a number");
  }
}

ValuePtr unpickle(const std::uint8_t* data, std::size_t size, const RecordLoader& load_record, const std::string& source) {
  return Unpickler(data, size, load_record, source).run();
}

ValuePtr read_torch_save(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error("the file does not exist or is not a file", "check the path (nnU-Net: fold_N/checkpoint_final.pth)",
                {path.string(), "", ""});
  }
  if (!starts_with_bytes(path, "PK")) {
    if (starts_with_bytes(path, std::string("\x80\x02", 2))) {
      throw Error("the file is in torch.save's legacy format (PyTorch < 1.6), which mlseg does not read",
                  "re-save it with a newer PyTorch: torch.save(torch.load(f, weights_only=False), f)", {path.string(), "", ""});
    }
    throw Error("the file is not a torch.save archive (no zip header)", kDamagedFix, {path.string(), "", ""});
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path.string());
    if (reader.hasRecord("byteorder")) {
      auto [order, order_size] = reader.getRecord("byteorder");
      const std::string byteorder(static_cast<const char*>(order.get()), order_size);
      if (byteorder != "little") {
        throw Error("the tensors are stored " + byteorder + "-endian", "re-save the checkpoint on a little-endian machine",
                    {path.string(), "", ""});
      }
    }
    if (!reader.hasRecord("data.pkl")) throw Error("the archive has no data.pkl", kDamagedFix, {path.string(), "", ""});
    auto [pickle, pickle_size] = reader.getRecord("data.pkl");
    const RecordLoader records = [&reader, &path](const std::string& key) {
      const std::string name = "data/" + key;
      if (!reader.hasRecord(name)) {
        throw Error("the archive has no record " + name + " for a tensor it refers to", kDamagedFix, {path.string(), "", ""});
      }
      auto [bytes, bytes_size] = reader.getRecord(name);
      return owned_bytes(std::move(bytes), bytes_size);
    };
    return unpickle(static_cast<const std::uint8_t*>(pickle.get()), pickle_size, records, path.string());
  } catch (const c10::Error& e) {
    throw Error("cannot read the zip archive (" + std::string(e.what_without_backtrace()).substr(0, 200) + ")", kDamagedFix,
                {path.string(), "", ""});
  }
}

}  // namespace mlseg::torch_pickle
