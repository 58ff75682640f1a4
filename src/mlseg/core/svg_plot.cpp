#include "mlseg/core/svg_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "mlseg/core/html_escape.h"

namespace mlseg {

namespace {

// Okabe & Ito (2008), ordered so that the first lines get the highest-contrast colours and the
// pale yellow comes last.
const std::array<std::string, kPaletteSize> kPalette = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                                        "#56B4E9", "#CC79A7", "#000000", "#F0E442"};

constexpr double kFontSize = 12;
constexpr double kCharWidth = 6.8;  // average width of a 12 px sans-serif character, for layout
constexpr double kTitleHeight = 28;
constexpr double kTitleCharScale = 1.35;  // titles are 14 px bold
constexpr double kLegendRowPx = 18;

std::string px(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  return buffer;
}

double text_width(const std::string& text) { return kCharWidth * static_cast<double>(text.size()); }

// Shortens a label to fit `max_width` pixels ("…" marks the cut); the full text stays in a <title>.
std::string fit_text(const std::string& text, double max_width) {
  const auto max_chars = static_cast<std::size_t>(std::max(3.0, max_width / kCharWidth));
  if (text.size() <= max_chars) return text;
  return text.substr(0, max_chars - 1) + "\u2026";
}

struct Svg {
  std::ostringstream out;

  Svg(double width, double height, const std::string& title) {
    out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(width) << "\" height=\"" << px(height)
        << "\" viewBox=\"0 0 " << px(width) << ' ' << px(height) << "\" role=\"img\" font-family=\"sans-serif\" font-size=\""
        << kFontSize << "\">\n";
    if (!title.empty()) out << "<title>" << escape_html(title) << "</title>\n";
    out << "<rect x=\"0\" y=\"0\" width=\"" << px(width) << "\" height=\"" << px(height) << "\" fill=\"#ffffff\"/>\n";
    if (!title.empty()) {
      out << "<text x=\"" << px(width / 2) << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
          << escape_html(title) << "</text>\n";
    }
  }

  void text(double x, double y, const std::string& content, const std::string& anchor = "start",
            const std::string& extra = "") {
    out << "<text x=\"" << px(x) << "\" y=\"" << px(y) << "\" text-anchor=\"" << anchor << '"';
    if (!extra.empty()) out << ' ' << extra;
    out << '>' << escape_html(content) << "</text>\n";
  }

  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double stroke_width = 1,
            const std::string& extra = "") {
    out << "<line x1=\"" << px(x1) << "\" y1=\"" << px(y1) << "\" x2=\"" << px(x2) << "\" y2=\"" << px(y2)
        << "\" stroke=\"" << stroke << "\" stroke-width=\"" << px(stroke_width) << '"';
    if (!extra.empty()) out << ' ' << extra;
    out << "/>\n";
  }

  void rect(double x, double y, double width, double height, const std::string& fill, const std::string& extra = "") {
    out << "<rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"" << px(std::max(0.0, width)) << "\" height=\""
        << px(std::max(0.0, height)) << "\" fill=\"" << fill << '"';
    if (!extra.empty()) out << ' ' << extra;
    out << "/>\n";
  }

  std::string finish() {
    out << "</svg>\n";
    return out.str();
  }
};

/// An axis mapping data values to pixels, linear or log10, with tick positions.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;  // in data units (log: the powers of ten at the ends)
  std::vector<double> ticks;

  double fraction(double value) const {
    if (log) return (std::log10(value) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (value - lo) / (hi - lo);
  }
};

double nice_step(double range, int target_ticks) {
  const double raw = range / std::max(1, target_ticks);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalised = raw / magnitude;
  const double nice = normalised <= 1 ? 1 : normalised <= 2 ? 2 : normalised <= 2.5 ? 2.5 : normalised <= 5 ? 5 : 10;
  return nice * magnitude;
}

// `min_step`: e.g. 1 for integer data (epochs), which must not get ticks at 0.5.
Axis linear_axis(double lo, double hi, int target_ticks, double min_step = 0) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = std::max(nice_step(hi - lo, target_ticks), min_step);
  Axis axis;
  axis.lo = std::floor(lo / step + 1e-9) * step;
  axis.hi = std::ceil(hi / step - 1e-9) * step;
  for (int i = 0;; ++i) {
    const double tick = axis.lo + i * step;
    if (tick > axis.hi + step * 1e-6) break;
    axis.ticks.push_back(std::abs(tick) < step * 1e-9 ? 0.0 : tick);
  }
  return axis;
}

Axis log_axis(double positive_lo, double positive_hi) {
  if (!(positive_lo > 0) || !std::isfinite(positive_lo)) positive_lo = 1;
  if (!(positive_hi >= positive_lo) || !std::isfinite(positive_hi)) positive_hi = positive_lo * 10;
  int lo_decade = static_cast<int>(std::floor(std::log10(positive_lo) + 1e-9));
  int hi_decade = static_cast<int>(std::ceil(std::log10(positive_hi) - 1e-9));
  if (hi_decade <= lo_decade) hi_decade = lo_decade + 1;
  Axis axis;
  axis.log = true;
  axis.lo = std::pow(10.0, lo_decade);
  axis.hi = std::pow(10.0, hi_decade);
  const int decade_step = std::max(1, (hi_decade - lo_decade + 7) / 8);
  const bool few_decades = hi_decade - lo_decade <= 2;  // then 2 and 5 get ticks too
  for (int decade = lo_decade; decade <= hi_decade; decade += decade_step) {
    const double power = std::pow(10.0, decade);
    axis.ticks.push_back(power);
    if (few_decades && decade < hi_decade) {
      axis.ticks.push_back(2 * power);
      axis.ticks.push_back(5 * power);
    }
  }
  return axis;
}

bool usable(double value, bool log) { return std::isfinite(value) && (!log || value > 0); }

std::string series_colour(const std::string& chosen, std::size_t index) {
  return chosen.empty() ? palette_colour(index) : chosen;
}

// Viridis anchors: perceptually uniform and readable with colour-vision deficiencies.
const std::array<std::array<double, 3>, 5> kViridis = {{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98},
                                                        {253, 231, 37}}};

std::array<double, 3> scale_rgb(double fraction) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  // Reversed so that high values are dark: a heatmap of frequencies reads "darker = more".
  const double position = (1 - fraction) * (kViridis.size() - 1);
  const auto index = std::min<std::size_t>(static_cast<std::size_t>(position), kViridis.size() - 2);
  const double t = position - static_cast<double>(index);
  std::array<double, 3> rgb{};
  for (int c = 0; c < 3; ++c) rgb[c] = kViridis[index][c] * (1 - t) + kViridis[index + 1][c] * t;
  return rgb;
}

std::string hex_colour(const std::array<double, 3>& rgb) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", static_cast<int>(std::lround(rgb[0])),
                static_cast<int>(std::lround(rgb[1])), static_cast<int>(std::lround(rgb[2])));
  return buffer;
}

bool is_dark(const std::array<double, 3>& rgb) { return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140; }

}  // namespace

const std::string& palette_colour(std::size_t index) { return kPalette[index % kPalette.size()]; }

std::string format_chart_number(double value) {
  if (!std::isfinite(value)) return "n/a";
  if (value == 0) return "0";
  char buffer[32];
  const double magnitude = std::abs(value);
  if (magnitude < 1e9 && value == std::round(value)) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);  // counts in full
  } else if (magnitude >= 1e-3 && magnitude < 1e6) {
    std::snprintf(buffer, sizeof buffer, "%.4g", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2g", value);
  }
  return buffer;
}

std::string line_chart_svg(const LineChart& chart) {
  const double width = std::max(240, chart.width);
  const double height = std::max(160, chart.height);
  Svg svg(width, height, chart.title);

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  bool any_point = false, integer_x = true;
  for (const Series& series : chart.series) {
    const std::size_t n = std::min(series.x.size(), series.y.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(series.x[i]) || !usable(series.y[i], chart.log_y)) continue;
      any_point = true;
      integer_x = integer_x && series.x[i] == std::round(series.x[i]);
      x_lo = std::min(x_lo, series.x[i]);
      x_hi = std::max(x_hi, series.x[i]);
      y_lo = std::min(y_lo, series.y[i]);
      y_hi = std::max(y_hi, series.y[i]);
    }
  }
  if (!any_point) x_lo = 0, x_hi = 1, y_lo = chart.log_y ? 0.1 : 0, y_hi = 1;
  if (usable(chart.y_min, chart.log_y)) y_lo = chart.y_min;
  if (usable(chart.y_max, chart.log_y)) y_hi = chart.y_max;

  const Axis x_axis = linear_axis(x_lo, x_hi, 6, integer_x ? 1.0 : 0.0);
  const Axis y_axis = chart.log_y ? log_axis(y_lo, y_hi) : linear_axis(y_lo, y_hi, 5);

  double legend_width = 0;
  for (const Series& series : chart.series) legend_width = std::max(legend_width, text_width(series.name));
  legend_width = chart.series.empty() ? 0 : std::min(legend_width + 40, width / 3);

  double widest_tick = 0;
  for (const double tick : y_axis.ticks) widest_tick = std::max(widest_tick, text_width(format_chart_number(tick)));
  const double left = 30 + widest_tick + 6;
  const double top = chart.title.empty() ? 12 : kTitleHeight + 6;
  const double right = width - 12 - legend_width;
  const double bottom = height - 44;
  const auto to_x = [&](double x) { return left + x_axis.fraction(x) * (right - left); };
  const auto to_y = [&](double y) { return bottom - y_axis.fraction(y) * (bottom - top); };

  // Grid and ticks.
  for (const double tick : y_axis.ticks) {
    const double y = to_y(tick);
    svg.line(left, y, right, y, "#e0e0e0");
    svg.text(left - 6, y + 4, format_chart_number(tick), "end");
  }
  for (const double tick : x_axis.ticks) {
    const double x = to_x(tick);
    svg.line(x, bottom, x, bottom + 5, "#333333");
    svg.text(x, bottom + 18, format_chart_number(tick), "middle");
  }
  svg.rect(left, top, right - left, bottom - top, "none", "stroke=\"#333333\" stroke-width=\"1\"");
  svg.text((left + right) / 2, height - 8, chart.x_label, "middle");
  // A fixed y range may leave points outside: clip the lines to the frame. Ids are global to an
  // HTML page holding several charts; this one is named by the rectangle, so charts that share
  // an id share the same clip and the output stays deterministic.
  const std::string clip_id = "mlseg-clip-" + std::to_string(std::lround(left)) + "-" + std::to_string(std::lround(top)) +
                              "-" + std::to_string(std::lround(right)) + "-" + std::to_string(std::lround(bottom));
  svg.out << "<clipPath id=\"" << clip_id << "\"><rect x=\"" << px(left) << "\" y=\"" << px(top) << "\" width=\""
          << px(right - left) << "\" height=\"" << px(bottom - top) << "\"/></clipPath>\n";
  svg.text(14, (top + bottom) / 2, chart.y_label + (chart.log_y ? " (log scale)" : ""), "middle",
           "transform=\"rotate(-90 14 " + px((top + bottom) / 2) + ")\"");
  if (!any_point) svg.text((left + right) / 2, (top + bottom) / 2, "no data", "middle", "fill=\"#666666\"");

  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    const std::string colour = series_colour(series.colour, s);
    const std::string dash = series.dashed ? " stroke-dasharray=\"6 4\"" : "";
    const std::size_t n = std::min(series.x.size(), series.y.size());
    const auto ok = [&](std::size_t i) { return std::isfinite(series.x[i]) && usable(series.y[i], chart.log_y); };
    std::string path;
    for (std::size_t i = 0; i < n; ++i) {
      if (!ok(i)) continue;
      const bool starts = i == 0 || !ok(i - 1);
      path += (starts ? "M" : "L") + px(to_x(series.x[i])) + ' ' + px(to_y(series.y[i])) + ' ';
    }
    svg.out << "<g clip-path=\"url(#" << clip_id << ")\"><title>" << escape_html(series.name) << "</title>\n";
    if (!path.empty()) {
      path.pop_back();
      svg.out << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\"" << dash
              << "/>\n";
    }
    // A point between two gaps has no line through it: mark it so it is still seen.
    for (std::size_t i = 0; i < n; ++i) {
      if (ok(i) && (i == 0 || !ok(i - 1)) && (i + 1 == n || !ok(i + 1))) {
        svg.out << "<circle cx=\"" << px(to_x(series.x[i])) << "\" cy=\"" << px(to_y(series.y[i]))
                << "\" r=\"3\" fill=\"" << colour << "\"/>\n";
      }
    }
    svg.out << "</g>\n";

    // Legend rows while they fit; then one row saying how many more (their lines keep a tooltip).
    const auto legend_rows = static_cast<std::size_t>(std::max(1.0, std::floor((bottom - top - 8) / kLegendRowPx)));
    const double legend_x = right + 12;
    const double legend_y = top + 8 + kLegendRowPx * static_cast<double>(s);
    const bool fits = chart.series.size() <= legend_rows || s + 1 < legend_rows;
    if (fits) {
      svg.line(legend_x, legend_y, legend_x + 20, legend_y, colour, 2, dash.empty() ? "" : dash.substr(1));
      svg.text(legend_x + 26, legend_y + 4, fit_text(series.name, legend_width - 30));
    } else if (s + 1 == legend_rows) {
      svg.text(legend_x, legend_y + 4, "+" + std::to_string(chart.series.size() - s) + " more series", "start",
               "fill=\"#666666\"");
    }
  }
  return svg.finish();
}

std::string bar_chart_svg(const BarChart& chart) {
  const double width = std::max(240, chart.width);
  const double row = std::max(12, chart.row_height);
  double label_width = 0, annotation_width = 0;
  double lo_positive = std::numeric_limits<double>::infinity(), hi = 0;
  for (const Bar& bar : chart.bars) {
    label_width = std::max(label_width, text_width(bar.label));
    annotation_width =
        std::max(annotation_width, text_width(bar.annotation.empty() ? format_chart_number(bar.value) : bar.annotation));
    if (usable(bar.value, chart.log_x)) {
      hi = std::max(hi, bar.value);
      if (bar.value > 0) lo_positive = std::min(lo_positive, bar.value);
    }
  }
  label_width = std::min(label_width + 12, width * 0.35);
  annotation_width = std::min(annotation_width + 12, width * 0.3);
  const double top = chart.title.empty() ? 12 : kTitleHeight + 4;
  const double height = top + row * static_cast<double>(chart.bars.size()) + 50;
  Svg svg(width, height, chart.title);

  const Axis axis = chart.log_x ? log_axis(lo_positive, hi) : linear_axis(0, hi > 0 ? hi : 1, 5);
  const double left = label_width;
  const double right = width - annotation_width;
  const double bottom = top + row * static_cast<double>(chart.bars.size());
  const auto to_x = [&](double value) { return left + std::clamp(axis.fraction(value), 0.0, 1.0) * (right - left); };

  for (const double tick : axis.ticks) {
    const double x = to_x(tick);
    svg.line(x, top, x, bottom, "#e0e0e0");
    svg.line(x, bottom, x, bottom + 5, "#333333");
    svg.text(x, bottom + 18, format_chart_number(tick), "middle");
  }
  svg.line(left, top, left, bottom, "#333333");
  svg.line(left, bottom, right, bottom, "#333333");
  svg.text((left + right) / 2, height - 8, chart.value_label + (chart.log_x ? " (log scale)" : ""), "middle");

  const std::string default_colour = chart.colour.empty() ? palette_colour(0) : chart.colour;
  for (std::size_t i = 0; i < chart.bars.size(); ++i) {
    const Bar& bar = chart.bars[i];
    const double y = top + row * static_cast<double>(i);
    svg.out << "<g><title>" << escape_html(bar.label) << ": "
            << escape_html(bar.annotation.empty() ? format_chart_number(bar.value) : bar.annotation) << "</title>\n";
    svg.text(left - 6, y + row / 2 + 4, fit_text(bar.label, label_width - 10), "end");
    double end = left;
    if (usable(bar.value, chart.log_x)) {
      end = to_x(bar.value);
      svg.rect(left, y + 2, end - left, row - 4, bar.colour.empty() ? default_colour : bar.colour);
    }
    svg.text(end + 4, y + row / 2 + 4, bar.annotation.empty() ? format_chart_number(bar.value) : bar.annotation);
    svg.out << "</g>\n";
  }
  return svg.finish();
}

std::string heatmap_svg(const Heatmap& chart) {
  const std::size_t rows = chart.row_labels.size();
  const std::size_t columns = chart.column_labels.size();
  const double cell = std::max(16, chart.cell_size);
  double row_label_width = 0, column_label_width = 0;
  for (const auto& label : chart.row_labels) row_label_width = std::max(row_label_width, text_width(label));
  for (const auto& label : chart.column_labels) column_label_width = std::max(column_label_width, text_width(label));
  row_label_width = std::min(row_label_width, 180.0);
  column_label_width = std::min(column_label_width, 180.0);

  const double left = 24 + row_label_width + 8;
  const double title = chart.title.empty() ? 8 : kTitleHeight;
  const double top = title + 20 + column_label_width * 0.72 + 8;  // columns labelled at -45 degrees
  const double grid_width = cell * static_cast<double>(columns);
  const double grid_height = cell * static_cast<double>(rows);
  const double legend_width = std::max(text_width(chart.marker_meaning) + 40,
                                      text_width(chart.value_meaning) + text_width(format_chart_number(chart.max_value)) + 150);
  const double width = std::max({left + grid_width + 24 + column_label_width * 0.72, left + legend_width,
                                 text_width(chart.title) * kTitleCharScale + 24, 360.0});
  const double height = top + grid_height + 64;
  Svg svg(width, height, chart.title);

  svg.text(left + grid_width / 2, title + 14, chart.column_axis_label, "middle");
  svg.text(12, top + grid_height / 2, chart.row_axis_label, "middle",
           "transform=\"rotate(-90 12 " + px(top + grid_height / 2) + ")\"");
  for (std::size_t c = 0; c < columns; ++c) {
    const double x = left + cell * (static_cast<double>(c) + 0.5);
    svg.text(x, top - 6, fit_text(chart.column_labels[c], 180), "start",
             "transform=\"rotate(-45 " + px(x) + ' ' + px(top - 6) + ")\"");
  }
  const double range = chart.max_value - chart.min_value;
  for (std::size_t r = 0; r < rows; ++r) {
    const double y = top + cell * static_cast<double>(r);
    svg.text(left - 6, y + cell / 2 + 4, fit_text(chart.row_labels[r], 180), "end");
    for (std::size_t c = 0; c < columns; ++c) {
      const double x = left + cell * static_cast<double>(c);
      const double value = r < chart.values.size() && c < chart.values[r].size()
                               ? chart.values[r][c]
                               : std::numeric_limits<double>::quiet_NaN();
      std::string fill = "#d9d9d9";
      bool dark = false;
      if (std::isfinite(value)) {
        const auto rgb = scale_rgb(range > 0 ? (value - chart.min_value) / range : 0.0);
        fill = hex_colour(rgb);
        dark = is_dark(rgb);
      }
      std::string text = r < chart.cell_text.size() && c < chart.cell_text[r].size() ? chart.cell_text[r][c] : "";
      if (text.empty()) text = format_chart_number(value);
      const std::string tooltip = escape_html(chart.row_labels[r]) + " / " + escape_html(chart.column_labels[c]) + ": " + escape_html(text);
      svg.out << "<g><title>" << tooltip << "</title>\n";
      svg.rect(x, y, cell, cell, fill, "stroke=\"#ffffff\" stroke-width=\"1\"");
      if (chart.show_cell_text) {
        svg.text(x + cell / 2, y + cell / 2 + 4, fit_text(text, cell - 4), "middle",
                 std::string("font-size=\"11\" fill=\"") + (dark ? "#ffffff" : "#000000") + '"');
      }
      const bool marked = r < chart.marked.size() && c < chart.marked[r].size() && chart.marked[r][c];
      if (marked) {
        svg.rect(x + 2, y + 2, cell - 4, cell - 4, "none", "stroke=\"#D55E00\" stroke-width=\"3\"");
        svg.out << "<path d=\"M" << px(x + cell - 12) << ' ' << px(y + 2) << " L" << px(x + cell - 2) << ' '
                << px(y + 2) << " L" << px(x + cell - 2) << ' ' << px(y + 12) << " Z\" fill=\"#D55E00\"/>\n";
      }
      svg.out << "</g>\n";
    }
  }

  // Legend: the colour scale as ten steps, then the marker.
  const double legend_y = top + grid_height + 18;
  svg.text(left, legend_y + 10, format_chart_number(chart.min_value), "end", "font-size=\"11\"");
  for (int step = 0; step < 10; ++step) {
    svg.rect(left + 4 + step * 12, legend_y, 12, 12, hex_colour(scale_rgb(step / 9.0)));
  }
  svg.text(left + 128, legend_y + 10, format_chart_number(chart.max_value) +
                                          (chart.value_meaning.empty() ? "" : "  " + chart.value_meaning),
           "start", "font-size=\"11\"");
  if (!chart.marker_meaning.empty()) {
    const double marker_y = legend_y + 22;
    svg.rect(left + 4, marker_y, 14, 14, "none", "stroke=\"#D55E00\" stroke-width=\"3\"");
    svg.text(left + 24, marker_y + 11, chart.marker_meaning, "start", "font-size=\"11\"");
  }
  return svg.finish();
}

}  // namespace mlseg
