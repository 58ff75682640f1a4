#pragma once
// A plain console table: column widths fit the content, text left-aligned.
#include <string>
#include <vector>

namespace mlseg {

/// `value` with `digits` digits after the point ("0.8123"); the caller keeps non-finite values out.
std::string format_fixed(double value, int digits);

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  /// Never wrap this column (file paths must stay whole to be copied or grepped).
  void keep_whole(std::size_t column) { keep_whole_.push_back(column); }
  bool empty() const { return rows_.empty(); }
  /// Cells longer than max_cell_width are wrapped onto continuation lines.
  std::string render(std::size_t max_cell_width = 100) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::size_t> keep_whole_;
};

}  // namespace mlseg
