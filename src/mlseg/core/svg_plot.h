#pragma once
// Small self-contained SVG charts (no scripts, no external fonts): line charts for training
// curves, horizontal bar charts and labelled heatmaps for label statistics. Colours come from
// the Okabe-Ito palette, which stays distinguishable under the common colour-vision deficiencies.
// Non-finite values (and values <= 0 on a log axis) are gaps: never drawn, never printed.
#include <limits>
#include <string>
#include <vector>

namespace mlseg {

/// Okabe-Ito colours as "#rrggbb", black last; index wraps around.
const std::string& palette_colour(std::size_t index);
inline constexpr std::size_t kPaletteSize = 8;

/// One named line. x and y have the same length; a non-finite y (or x) breaks the line there.
struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  std::string colour;   ///< "#rrggbb"; empty = palette colour of the series' index
  bool dashed = false;  ///< e.g. an EMA or a secondary quantity next to its raw series
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  bool log_y = false;     ///< log10 y axis; values <= 0 become gaps
  /// Fixed y range (e.g. 0..1 for Dice); NaN = from the data. Points outside are clipped.
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
  int width = 720;        ///< pixels, legend included
  int height = 360;
};

/// A complete <svg> element (with xmlns, so it is valid both inline in HTML and as a .svg file).
/// A chart without any finite point still renders its frame, labels and a "no data" note.
std::string line_chart_svg(const LineChart& chart);

struct Bar {
  std::string label;       ///< shown left of the bar
  double value = 0;        ///< non-finite: no bar, annotation only
  std::string annotation;  ///< shown right of the bar; empty = the value
  std::string colour;      ///< empty = the chart's colour
};

/// Horizontal bars, one row per bar; the height follows the number of bars.
struct BarChart {
  std::string title;
  std::string value_label;  ///< label of the value (horizontal) axis
  std::vector<Bar> bars;
  bool log_x = false;       ///< log10 value axis; values <= 0 get no bar
  int width = 720;
  int row_height = 20;
  std::string colour;       ///< empty = palette colour 0
};

std::string bar_chart_svg(const BarChart& chart);

/// A matrix of coloured cells with optional text in each cell and an optional marker (e.g.
/// "row channel is nested in column channel").
struct Heatmap {
  std::string title;
  std::string row_axis_label;
  std::string column_axis_label;
  std::vector<std::string> row_labels;
  std::vector<std::string> column_labels;
  std::vector<std::vector<double>> values;            ///< [row][column]; non-finite = grey cell
  std::vector<std::vector<std::string>> cell_text;    ///< optional, same shape; empty = formatted value
  std::vector<std::vector<bool>> marked;              ///< optional, same shape
  std::string marker_meaning;                         ///< legend text for the marker, e.g. "nested"
  std::string value_meaning;                          ///< legend text for the colour scale
  double min_value = 0;                               ///< colour scale range
  double max_value = 1;
  int cell_size = 44;
  bool show_cell_text = true;                         ///< off for cells too small to read
};

std::string heatmap_svg(const Heatmap& chart);

/// A number for a label: up to 4 significant digits, no trailing zeros, "1e-05" style when tiny
/// or huge; "n/a" for non-finite values (so "nan" and "inf" never reach a page).
std::string format_chart_number(double value);

}  // namespace mlseg
