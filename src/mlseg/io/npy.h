#pragma once
// .npy files (NumPy format 1.0-3.0): the preprocessed store's arrays, so numpy opens them
// (np.load) and the data loader memory-maps them to cut patches without reading whole cases.
//
// LibTorch has no uint16/32/64: unsigned arrays map to the signed tensor type of the same width
// (bit patterns kept), and channel codes are written with the unsigned descriptor ("<u2") so
// numpy shows them as what they are.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace mlseg {

/// What a .npy header declares.
struct NpyHeader {
  std::string descr;  ///< numpy dtype string, e.g. "<f4", "|u1", "<u2"
  std::vector<std::int64_t> shape;
  bool fortran_order = false;
  std::size_t data_offset = 0;  ///< bytes before the array data
  torch::ScalarType dtype = torch::kFloat;  ///< tensor type for descr (unsigned -> same-width signed)
  std::size_t item_size = 4;
  std::int64_t num_elements() const;
};

/// numpy descriptor for a tensor type ("<f4", "|u1", ...); `as_unsigned` writes int16/32/64 as
/// "<u2"/"<u4"/"<u8" (channel codes).
std::string npy_descr(torch::ScalarType dtype, bool as_unsigned = false);

/// Writes a C-contiguous copy of `tensor` (any layout, CPU) atomically: temp file, then rename.
void write_npy(const std::filesystem::path& path, const torch::Tensor& tensor, bool as_unsigned = false);

/// Parses and checks the header against the file size. Throws mlseg::Error naming the file for
/// bad magic, unsupported dtypes or versions, Fortran order, or a size that does not match.
NpyHeader read_npy_header(const std::filesystem::path& path);

/// A read-only memory mapping of a .npy file. tensor() views the mapped data without copying;
/// the view keeps the mapping alive. Writing through the view is undefined (the pages are
/// mapped read-only): clone() first.
class NpyMapping {
 public:
  static std::shared_ptr<NpyMapping> open(const std::filesystem::path& path);
  ~NpyMapping();
  NpyMapping(const NpyMapping&) = delete;
  NpyMapping& operator=(const NpyMapping&) = delete;

  const NpyHeader& header() const { return header_; }
  const std::filesystem::path& path() const { return path_; }
  const void* data() const { return static_cast<const char*>(base_) + header_.data_offset; }
  /// A tensor viewing the mapped array (no copy).
  torch::Tensor tensor() const;

 private:
  NpyMapping() = default;
  std::filesystem::path path_;
  NpyHeader header_;
  void* base_ = nullptr;
  std::size_t length_ = 0;
  std::weak_ptr<NpyMapping> self_;
};

/// The whole array, read into memory (a tensor that owns its data).
torch::Tensor read_npy(const std::filesystem::path& path);

}  // namespace mlseg
