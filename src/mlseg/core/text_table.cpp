#include "mlseg/core/text_table.h"

#include <algorithm>
#include <sstream>

namespace mlseg {

std::string format_fixed(double value, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << value;
  return out.str();
}
namespace {

// Splits a cell at newlines and at max_width, preferring spaces as break points.
std::vector<std::string> wrap(const std::string& text, std::size_t max_width) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t newline = text.find('\n', start);
    std::string line = text.substr(start, newline == std::string::npos ? std::string::npos
                                                                      : newline - start);
    while (line.size() > max_width) {
      std::size_t cut = line.rfind(' ', max_width);
      if (cut == std::string::npos || cut == 0) cut = max_width;
      lines.push_back(line.substr(0, cut));
      line = line.substr(cut == max_width ? cut : cut + 1);
    }
    lines.push_back(line);
    if (newline == std::string::npos) break;
    start = newline + 1;
  }
  return lines;
}

}  // namespace

std::string TextTable::render(std::size_t max_cell_width) const {
  const std::size_t columns = header_.size();
  std::vector<std::size_t> widths(columns, 0);
  std::vector<std::vector<std::vector<std::string>>> wrapped;
  auto measure = [&](const std::vector<std::string>& row) {
    std::vector<std::vector<std::string>> cells(columns);
    for (std::size_t c = 0; c < columns; ++c) {
      const bool whole = std::find(keep_whole_.begin(), keep_whole_.end(), c) != keep_whole_.end();
      cells[c] = wrap(c < row.size() ? row[c] : "", whole ? std::string::npos : max_cell_width);
      for (const auto& line : cells[c]) widths[c] = std::max(widths[c], line.size());
    }
    wrapped.push_back(std::move(cells));
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);

  std::string out;
  auto emit = [&](const std::vector<std::vector<std::string>>& cells) {
    std::size_t height = 0;
    for (const auto& cell : cells) height = std::max(height, cell.size());
    for (std::size_t line = 0; line < height; ++line) {
      std::string text;
      for (std::size_t c = 0; c < columns; ++c) {
        std::string part = line < cells[c].size() ? cells[c][line] : "";
        if (c + 1 < columns) part.resize(widths[c], ' ');
        text += part;
        if (c + 1 < columns) text += "  ";
      }
      while (!text.empty() && text.back() == ' ') text.pop_back();
      out += text + "\n";
    }
  };
  emit(wrapped[0]);
  std::size_t rule = 0;
  for (std::size_t c = 0; c < columns; ++c) rule += widths[c] + (c + 1 < columns ? 2 : 0);
  out += std::string(rule, '-') + "\n";
  for (std::size_t r = 1; r < wrapped.size(); ++r) emit(wrapped[r]);
  return out;
}

}  // namespace mlseg
