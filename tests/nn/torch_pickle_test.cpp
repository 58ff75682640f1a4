// The pickle reader behind nnU-Net checkpoint import (src/mlseg/nn/torch_pickle.cpp), on pickles
// made by CPython 3 (`pickle.dumps(obj, protocol=2)` and `protocol=5` of the object below), and
// on damaged data.
#include "mlseg/nn/torch_pickle.h"

#include <gtest/gtest.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg::torch_pickle {
namespace {

// obj = {'a': [1, -2, 300, 70000, -(2**40), 2.5, None, True, False], 'b': (-3, 'xé'),
//        'c': OrderedDict([('k', (1,)), ('l', {1, 2})]), 'd': b'\x00\xff', 'e': 2**63 - 1}
// obj['f'] = obj['a']   (the same list twice: the memo)
const char* const kProtocol2 =
    "80027d71002858010000006171015d7102284b014afeffffff4d2c014a701101008a060000000000ff4740040000000000004e88896558010000"
    "006271034afdffffff580300000078c3a97104867105580100000063710663636f6c6c656374696f6e730a4f726465726564446963740a7107"
    "295271082858010000006b71094b0185710a58010000006c710b635f5f6275696c74696e5f5f0a7365740a710c5d710d284b014b026585710e"
    "52710f755801000000647110635f636f646563730a656e636f64650a7111580300000000c3bf711258060000006c6174696e31711386711452"
    "711558010000006571168a08ffffffffffffff7f58010000006671176802752e";
const char* const kProtocol5 =
    "80059599000000000000007d94288c0161945d94284b014afeffffff4d2c014a701101008a060000000000ff4740040000000000004e888965"
    "8c0162944afdffffff8c0378c3a99486948c0163948c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c01"
    "6b944b0185948c016c948f94284b014b0290758c016494430200ff948c0165948a08ffffffffffffff7f8c0166946802752e";

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return bytes;
}

torch::Tensor no_records(const std::string& key) {
  throw Error("no record " + key, "none expected");
}

ValuePtr read(const std::vector<std::uint8_t>& bytes) { return unpickle(bytes.data(), bytes.size(), no_records, "test.pkl"); }

void expect_the_object(const Value& root) {
  ASSERT_TRUE(root.is(Kind::dict));
  ASSERT_EQ(root.entries.size(), 6U);
  const Value* a = root.find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->is(Kind::list));
  ASSERT_EQ(a->items.size(), 9U);
  EXPECT_EQ(a->items[0]->integer, 1);
  EXPECT_EQ(a->items[1]->integer, -2);
  EXPECT_EQ(a->items[2]->integer, 300);
  EXPECT_EQ(a->items[3]->integer, 70000);
  EXPECT_EQ(a->items[4]->integer, -(std::int64_t{1} << 40));
  EXPECT_DOUBLE_EQ(a->items[5]->floating, 2.5);
  EXPECT_TRUE(a->items[6]->is(Kind::none));
  EXPECT_TRUE(a->items[7]->is(Kind::boolean) && a->items[7]->boolean);
  EXPECT_TRUE(a->items[8]->is(Kind::boolean) && !a->items[8]->boolean);
  const Value* b = root.find("b");
  ASSERT_TRUE(b != nullptr && b->is(Kind::tuple) && b->items.size() == 2U);
  EXPECT_EQ(b->items[0]->integer, -3);
  EXPECT_EQ(b->items[1]->text, "x\xc3\xa9");  // UTF-8
  const Value* c = root.find("c");
  ASSERT_TRUE(c != nullptr && c->is(Kind::dict));
  ASSERT_EQ(c->entries.size(), 2U);
  EXPECT_EQ(c->entries[0].first->text, "k");  // insertion order kept
  EXPECT_TRUE(c->find("k")->is(Kind::tuple));
  const Value* set = c->find("l");
  ASSERT_TRUE(set != nullptr && set->is(Kind::list));
  EXPECT_EQ(set->items.size(), 2U);
  const Value* d = root.find("d");
  ASSERT_TRUE(d != nullptr && d->is(Kind::bytes));
  EXPECT_EQ(d->text, std::string("\x00\xff", 2));
  EXPECT_EQ(root.find("e")->integer, INT64_MAX);
  EXPECT_EQ(root.find("f"), a) << "the memo gives the same list object";
  EXPECT_EQ(root.find("missing"), nullptr);
}

TEST(TorchPickle, ReadsProtocol2AsTorchSaveWritesIt) { expect_the_object(*read(from_hex(kProtocol2))); }

TEST(TorchPickle, ReadsProtocol5FramesAndStackGlobals) { expect_the_object(*read(from_hex(kProtocol5))); }

TEST(TorchPickle, DamagedPicklesGiveAnErrorNamingTheSource) {
  const std::vector<std::uint8_t> whole = from_hex(kProtocol2);
  // Every truncation is refused, never read past the end.
  for (std::size_t n = 0; n + 1 < whole.size(); n += 7) {
    const std::vector<std::uint8_t> cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      read(cut);
      ADD_FAILURE() << "a pickle cut at " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.where().file, "test.pkl");
    }
  }
  std::vector<std::uint8_t> unknown = whole;
  unknown[2] = 0xff;  // in place of EMPTY_DICT
  EXPECT_THROW(read(unknown), Error);
  // BINGET of a memo entry never stored.
  EXPECT_THROW(read(from_hex("8002680a2e")), Error);
  // A long string whose length runs past the end: refused before anything is allocated.
  EXPECT_THROW(read(from_hex("800258ffffff7f2e")), Error);
  // APPEND to a dict.
  EXPECT_THROW(read(from_hex("80027d4b01612e")), Error);
  // STOP with two values on the stack.
  EXPECT_THROW(read(from_hex("80024b014b022e")), Error);
}

// torch._utils._rebuild_tensor_v2(storage, 1, size, stride, False, OrderedDict()) over a
// FloatStorage of 5 elements, key '0', at `location_hex` (a BINUNICODE of the device torch.save
// names): the hand-written equivalent of torch.save's bytes.
constexpr const char* kCpuLocation = "5803000000637075";         // 'cpu'
constexpr const char* kCudaLocation = "5806000000637564613a30";  // 'cuda:0'
std::vector<std::uint8_t> tensor_pickle(const std::string& size_stride, const std::string& location_hex = kCpuLocation) {
  const std::string global_rebuild = "63746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a";  // c torch._utils\n_rebuild_tensor_v2\n
  const std::string storage_pid = "28" "580700000073746f72616765" "63746f7263680a466c6f617453746f726167650a" "5801000000" "30" +
                                  location_hex + "4b05" "74" "51";  // ( 'storage' torch.FloatStorage '0' location 5 ) TUPLE BINPERSID
  return from_hex("8002" + global_rebuild + "28" + storage_pid + "4b01" + size_stride + "89" +
                  "63636f6c6c656374696f6e730a4f726465726564446963740a2952" + "74" "52" "2e");
}

TEST(TorchPickle, TensorsComeFromTheirStorageRecordsAndStayInside) {
  auto pickle = [](const std::string& size_stride) { return tensor_pickle(size_stride); };
  const torch::Tensor storage_bytes = torch::arange(5, torch::kFloat).view(torch::kByte).clone();
  int loads = 0;
  const RecordLoader records = [&](const std::string& key) {
    ++loads;
    if (key != "0") throw Error("no record " + key, "");
    return storage_bytes;
  };
  const auto ok = pickle("4b024b0286" "4b024b0186");  // size (2, 2), stride (2, 1)
  const ValuePtr tensor = unpickle(ok.data(), ok.size(), records, "t.pkl");
  ASSERT_TRUE(tensor->is(Kind::tensor));
  EXPECT_TRUE(torch::equal(tensor->tensor, torch::tensor({{1.0F, 2.0F}, {3.0F, 4.0F}})));
  EXPECT_EQ(loads, 1);
  // Size (2, 3) from offset 1 would reach element 6 of 5; (2, 2) with stride (3, 1) element 5.
  for (const std::string& bad : {std::string("4b024b0386" "4b034b0186"), std::string("4b024b0286" "4b034b0186")}) {
    const auto bytes = pickle(bad);
    EXPECT_THROW(unpickle(bytes.data(), bytes.size(), records, "t.pkl"), Error);
  }
  // A stride-0 view larger than its storage (a corrupt size that .contiguous() would allocate).
  const auto huge = pickle("4a00ca9a3b85" "4b0085");  // size (1000000000,), stride (0,)
  EXPECT_THROW(unpickle(huge.data(), huge.size(), records, "t.pkl"), Error);
}

TEST(TorchPickle, TensorsSavedOnAGpuLoadOnTheCpu) {
  // An nnU-Net checkpoint trained on a GPU names its storages' location 'cuda:0'; they load on the
  // CPU as torch.load(map_location='cpu') gives them, on a machine without CUDA too.
  const auto dir = std::filesystem::temp_directory_path() / ("mlseg_torch_pickle_gpu_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "checkpoint_final.pth";
  {
    const std::vector<std::uint8_t> pickle = tensor_pickle("4b024b0286" "4b024b0186", kCudaLocation);  // size (2, 2), stride (2, 1)
    const torch::Tensor storage = torch::arange(5, torch::kFloat);
    caffe2::serialize::PyTorchStreamWriter writer(path.string());
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeRecord("byteorder", "little", 6);
    writer.writeRecord("data/0", storage.data_ptr(), static_cast<std::size_t>(storage.numel()) * sizeof(float));
    writer.writeEndOfFile();
  }
  const ValuePtr tensor = read_torch_save(path);
  ASSERT_TRUE(tensor->is(Kind::tensor));
  EXPECT_TRUE(tensor->tensor.device().is_cpu());
  EXPECT_TRUE(torch::equal(tensor->tensor, torch::tensor({{1.0F, 2.0F}, {3.0F, 4.0F}})));
  std::filesystem::remove_all(dir);
}

TEST(TorchPickle, FilesThatAreNotTorchSaveArchivesAreNamed) {
  const auto dir = std::filesystem::temp_directory_path() / ("mlseg_torch_pickle_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    return dir / name;
  };
  auto message = [](const std::filesystem::path& p) {
    try {
      read_torch_save(p);
    } catch (const Error& e) {
      EXPECT_EQ(e.where().file, p.string());
      return e.problem();
    }
    return std::string("accepted");
  };
  EXPECT_NE(message(write("legacy.pth", std::string("\x80\x02\x8a\x0a", 4))).find("legacy"), std::string::npos);
  EXPECT_NE(message(write("text.pth", "not a checkpoint")).find("not a torch.save archive"), std::string::npos);
  EXPECT_NE(message(write("broken_zip.pth", std::string("PK\x03\x04", 4) + std::string(64, 'x'))).find("zip"), std::string::npos);
  EXPECT_NE(message(dir / "absent.pth").find("does not exist"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mlseg::torch_pickle
