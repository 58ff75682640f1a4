#include "mlseg/io/npy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"

namespace mlseg {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
/// numpy aligns the data to 64 bytes (format.py ARRAY_ALIGN).
constexpr std::size_t kAlignment = 64;
/// Headers are small dicts; anything longer is not a header we wrote or numpy would write.
constexpr std::size_t kMaxHeaderLength = 1 << 20;
constexpr int kMaxDims = 32;

Error npy_error(const std::filesystem::path& path, const std::string& problem) {
  return Error(problem, "re-create the file (mlseg preprocess rewrites it when it is deleted), or check that it is a .npy file written by numpy or mlseg")
      .located({path.string(), "", ""});
}

struct DtypeEntry {
  const char* descr;
  torch::ScalarType dtype;
  std::size_t size;
};
const DtypeEntry kDtypes[] = {
    {"<f4", torch::kFloat, 4}, {"<f8", torch::kDouble, 8}, {"<f2", torch::kHalf, 2},
    {"|u1", torch::kUInt8, 1}, {"|i1", torch::kInt8, 1},   {"|b1", torch::kBool, 1},
    {"<i2", torch::kInt16, 2}, {"<u2", torch::kInt16, 2},  {"<i4", torch::kInt, 4},
    {"<u4", torch::kInt, 4},   {"<i8", torch::kLong, 8},   {"<u8", torch::kLong, 8},
};

/// The value text after 'key': in a header dict.
std::string dict_value(const std::string& header, const std::string& key, const std::filesystem::path& path) {
  const std::string quoted = "'" + key + "'";
  const auto at = header.find(quoted);
  if (at == std::string::npos) throw npy_error(path, "the .npy header has no '" + key + "' entry");
  auto colon = header.find(':', at + quoted.size());
  if (colon == std::string::npos) throw npy_error(path, "the .npy header entry '" + key + "' has no value");
  std::size_t begin = colon + 1;
  while (begin < header.size() && header[begin] == ' ') ++begin;
  if (begin >= header.size()) throw npy_error(path, "the .npy header entry '" + key + "' has no value");
  std::size_t end = begin;
  if (header[begin] == '\'') {
    end = header.find('\'', begin + 1);
    if (end == std::string::npos) throw npy_error(path, "the .npy header entry '" + key + "' is not terminated");
    return header.substr(begin + 1, end - begin - 1);
  }
  if (header[begin] == '(') {
    end = header.find(')', begin);
    if (end == std::string::npos) throw npy_error(path, "the .npy header's shape is not terminated");
    return header.substr(begin + 1, end - begin - 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(begin, end - begin);
}

std::vector<std::int64_t> parse_shape(const std::string& text, const std::filesystem::path& path) {
  std::vector<std::int64_t> shape;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i >= text.size()) break;
    std::size_t end = i;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == i || end - i > 18) throw npy_error(path, "the .npy header's shape (" + text + ") is not a tuple of sizes");
    shape.push_back(std::stoll(text.substr(i, end - i)));
    i = end;
    while (i < text.size() && text[i] == 'L') ++i;  // Python 2 longs
  }
  if (static_cast<int>(shape.size()) > kMaxDims) throw npy_error(path, "the .npy header declares more than 32 dimensions");
  return shape;
}

std::uintmax_t file_size_or_throw(const std::filesystem::path& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) {
    throw Error("cannot open " + path.string() + ": " + error.message(), "check that the file exists and is readable")
        .located({path.string(), "", ""});
  }
  return size;
}

}  // namespace

std::int64_t NpyHeader::num_elements() const {
  std::int64_t count = 1;
  for (const auto size : shape) {
    if (size == 0) return 0;  // read_npy_header checked that the product of the others fits
    count *= size;
  }
  return count;
}

std::string npy_descr(torch::ScalarType dtype, bool as_unsigned) {
  switch (dtype) {
    case torch::kFloat: return "<f4";
    case torch::kDouble: return "<f8";
    case torch::kHalf: return "<f2";
    case torch::kUInt8: return "|u1";
    case torch::kInt8: return "|i1";
    case torch::kBool: return "|b1";
    case torch::kInt16: return as_unsigned ? "<u2" : "<i2";
    case torch::kInt: return as_unsigned ? "<u4" : "<i4";
    case torch::kLong: return as_unsigned ? "<u8" : "<i8";
    default:
      throw Error(std::string("cannot write a ") + c10::toString(dtype) + " tensor as .npy",
                  "convert it to float32, an integer type or bool first");
  }
}

void write_npy(const std::filesystem::path& path, const torch::Tensor& tensor, bool as_unsigned) {
  static_assert(sizeof(std::uint32_t) == 4);
  const auto data = tensor.contiguous().cpu();
  std::string dict = "{'descr': '" + npy_descr(data.scalar_type(), as_unsigned) + "', 'fortran_order': False, 'shape': (";
  // numpy's tuple spelling: (), (5,), (2, 3).
  for (int64_t d = 0; d < data.dim(); ++d) {
    if (d > 0) dict += ", ";
    dict += std::to_string(data.size(d));
  }
  if (data.dim() == 1) dict += ",";
  dict += "), }";
  // Version 1.0 while the header fits a 16-bit length, as numpy does.
  const bool version1 = dict.size() + 1 + kMagicSize + 4 < 65535;
  const std::size_t prefix = kMagicSize + 2 + (version1 ? 2 : 4);
  std::size_t total = prefix + dict.size() + 1;
  const std::size_t padding = (kAlignment - total % kAlignment) % kAlignment;
  dict.append(padding, ' ');
  dict += '\n';
  const std::size_t header_length = dict.size();

  std::filesystem::create_directories(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
  AtomicOutput output(path);
  {
    std::ofstream out(output.temp_path(), std::ios::binary);
    if (!out) {
      throw Error("cannot write " + path.string(), "check that the folder is writable and the disk is not full")
          .located({path.string(), "", ""});
    }
    out.write(kMagic, kMagicSize);
    const char version[2] = {static_cast<char>(version1 ? 1 : 2), 0};
    out.write(version, 2);
    if (version1) {
      const unsigned char length[2] = {static_cast<unsigned char>(header_length & 0xff), static_cast<unsigned char>(header_length >> 8)};
      out.write(reinterpret_cast<const char*>(length), 2);
    } else {
      unsigned char length[4];
      for (int i = 0; i < 4; ++i) length[i] = static_cast<unsigned char>((header_length >> (8 * i)) & 0xff);
      out.write(reinterpret_cast<const char*>(length), 4);
    }
    out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    out.write(static_cast<const char*>(data.data_ptr()), static_cast<std::streamsize>(data.numel() * data.element_size()));
    out.close();
    if (!out) {
      throw Error("writing " + path.string() + " failed", "check that the disk is not full")
          .located({path.string(), "", ""});
    }
  }
  output.commit();
}

NpyHeader read_npy_header(const std::filesystem::path& path) {
  const auto file_size = file_size_or_throw(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path.string(), "check that the file is readable").located({path.string(), "", ""});
  char prefix[12] = {};
  in.read(prefix, 10);
  if (in.gcount() < 10 || std::memcmp(prefix, kMagic, kMagicSize) != 0) throw npy_error(path, "not a .npy file (bad magic bytes)");
  const int major = static_cast<unsigned char>(prefix[6]);
  std::size_t header_length = 0;
  std::size_t data_offset = 0;
  if (major == 1) {
    header_length = static_cast<unsigned char>(prefix[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(prefix[9])) << 8);
    data_offset = 10 + header_length;
  } else if (major == 2 || major == 3) {
    in.read(prefix + 10, 2);
    for (int i = 0; i < 4; ++i) header_length |= static_cast<std::size_t>(static_cast<unsigned char>(prefix[8 + i])) << (8 * i);
    data_offset = 12 + header_length;
  } else {
    throw npy_error(path, "unsupported .npy format version " + std::to_string(major));
  }
  if (header_length > kMaxHeaderLength || data_offset > file_size) throw npy_error(path, "the .npy header length is larger than the file");
  std::string header(header_length, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_length));
  if (static_cast<std::size_t>(in.gcount()) != header_length) throw npy_error(path, "the .npy header is truncated");

  NpyHeader result;
  result.data_offset = data_offset;
  result.descr = dict_value(header, "descr", path);
  bool known = false;
  for (const auto& entry : kDtypes) {
    if (result.descr == entry.descr || (result.descr.size() == 3 && result.descr[0] == '=' && result.descr.substr(1) == std::string(entry.descr).substr(1))) {
      result.descr = entry.descr;
      result.dtype = entry.dtype;
      result.item_size = entry.size;
      known = true;
      break;
    }
  }
  if (!known) throw npy_error(path, "unsupported .npy dtype '" + result.descr + "' (big-endian or not a numeric type)");
  const auto fortran = dict_value(header, "fortran_order", path);
  if (fortran.find("True") != std::string::npos) throw npy_error(path, "Fortran-ordered .npy arrays are not supported (write it with np.ascontiguousarray)");
  result.shape = parse_shape(dict_value(header, "shape", path), path);

  // Size check without overflow: the data must be exactly what the header declares.
  const std::uintmax_t data_bytes = file_size - data_offset;
  std::uintmax_t expected = result.item_size;
  const bool empty = std::find(result.shape.begin(), result.shape.end(), 0) != result.shape.end();
  for (const auto size : result.shape) {
    if (size == 0) continue;
    // Every size counts, also after a 0: the element count must fit in int64 whatever the order.
    if (expected > static_cast<std::uintmax_t>(std::numeric_limits<std::int64_t>::max()) / static_cast<std::uintmax_t>(size) ||
        (!empty && expected * static_cast<std::uintmax_t>(size) > data_bytes)) {
      throw npy_error(path, "the .npy header declares more data than the file holds (truncated file?)");
    }
    expected *= static_cast<std::uintmax_t>(size);
  }
  if (empty) expected = 0;
  if (expected != data_bytes) {
    throw npy_error(path, "the file holds " + std::to_string(data_bytes) + " data bytes but its header declares " +
                              std::to_string(expected) + " (truncated or corrupt file)");
  }
  return result;
}

std::shared_ptr<NpyMapping> NpyMapping::open(const std::filesystem::path& path) {
  auto header = read_npy_header(path);
  std::shared_ptr<NpyMapping> mapping(new NpyMapping());
  mapping->path_ = path;
  mapping->header_ = std::move(header);
  mapping->self_ = mapping;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno), "check that the file is readable").located({path.string(), "", ""});
  struct stat info {};
  ::fstat(fd, &info);
  mapping->length_ = static_cast<std::size_t>(info.st_size);
  if (mapping->length_ > 0) {
    void* base = ::mmap(nullptr, mapping->length_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      throw Error("cannot memory-map " + path.string() + ": " + reason, "check the file and the available address space").located({path.string(), "", ""});
    }
    mapping->base_ = base;
  }
  ::close(fd);
  return mapping;
}

NpyMapping::~NpyMapping() {
  if (base_ != nullptr) ::munmap(base_, length_);
}

torch::Tensor NpyMapping::tensor() const {
  auto keep_alive = self_.lock();
  static char empty = 0;
  void* data = header_.num_elements() == 0 || base_ == nullptr ? static_cast<void*>(&empty)
                                                                : const_cast<void*>(this->data());
  return torch::from_blob(
      data, header_.shape, [keep_alive](void*) mutable { keep_alive.reset(); },
      torch::TensorOptions().dtype(header_.dtype));
}

torch::Tensor read_npy(const std::filesystem::path& path) {
  return NpyMapping::open(path)->tensor().clone();
}

}  // namespace mlseg
