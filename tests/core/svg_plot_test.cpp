#include "mlseg/core/svg_plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <set>
#include <vector>

namespace mlseg {
namespace {

const double kNaN = std::nan("");

// Tags nest and close properly; text never contains a raw '<' or '&' that is not an entity.
::testing::AssertionResult well_formed(const std::string& svg) {
  std::vector<std::string> open;
  std::size_t at = 0;
  while ((at = svg.find('<', at)) != std::string::npos) {
    const std::size_t end = svg.find('>', at);
    if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed tag at " << at;
    const std::string tag = svg.substr(at + 1, end - at - 1);
    if (tag.empty()) return ::testing::AssertionFailure() << "empty tag at " << at;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) {
        return ::testing::AssertionFailure() << "</" << tag.substr(1) << "> closes " << (open.empty() ? "nothing" : open.back());
      }
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
    at = end + 1;
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> never closed";
  if (std::regex_search(svg, std::regex("&(?!(amp|lt|gt|quot|#39);)"))) return ::testing::AssertionFailure() << "raw &";
  return ::testing::AssertionSuccess();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool has_nan_or_inf(const std::string& text) { return std::regex_search(text, std::regex("nan|inf", std::regex::icase)); }

// The y coordinates of a series path ("M x y L x y ...").
std::vector<double> path_y(const std::string& svg, const std::string& colour) {
  const std::regex path("<path d=\"([^\"]*)\" fill=\"none\" stroke=\"" + colour + "\"");
  std::smatch match;
  std::vector<double> ys;
  if (!std::regex_search(svg, match, path)) return ys;
  const std::string d = match[1];
  const std::regex point("[ML](-?[0-9.]+) (-?[0-9.]+)");
  for (auto it = std::sregex_iterator(d.begin(), d.end(), point); it != std::sregex_iterator(); ++it) {
    ys.push_back(std::stod((*it)[2]));
  }
  return ys;
}

TEST(SvgLineChart, WellFormedWithTitleAxisLabelsAndLegend) {
  LineChart chart;
  chart.title = "Losses";
  chart.x_label = "epoch";
  chart.y_label = "loss";
  chart.series = {{"train", {0, 1, 2}, {0.9, 0.5, 0.3}, "", false}, {"val", {0, 1, 2}, {1.0, 0.7, 0.6}, "", true}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_TRUE(well_formed(svg));
  for (const char* text : {">Losses<", ">epoch<", ">loss<", ">train<", ">val<"}) EXPECT_NE(svg.find(text), std::string::npos) << text;
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // the dashed series
  EXPECT_EQ(count(svg, "<path d=\"M"), 2u);
  // Larger values are drawn higher (smaller SVG y).
  const std::vector<double> ys = path_y(svg, palette_colour(0));
  ASSERT_EQ(ys.size(), 3u);
  EXPECT_LT(ys[0], ys[1]);
  EXPECT_LT(ys[1], ys[2]);
}

TEST(SvgLineChart, NonFiniteValuesAreGapsNeverPrinted) {
  LineChart chart;
  chart.series = {{"dice", {0, 1, 2, 3, 4, 5}, {0.2, 0.3, kNaN, 0.5, std::numeric_limits<double>::infinity(), 0.7}, "", false}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_FALSE(has_nan_or_inf(svg));
  // Points 0-1 form a line; 3 and 5 stand alone between gaps and get a marker each.
  EXPECT_EQ(count(svg, "<path d=\"M"), 1u);
  const std::vector<double> ys = path_y(svg, palette_colour(0));
  EXPECT_EQ(ys.size(), 4u);  // 0, 1 as M/L; 3 and 5 as lone M
  EXPECT_EQ(count(svg, "<circle"), 2u);
}

TEST(SvgLineChart, NoFiniteDataStillRendersFrameAndSaysSo) {
  LineChart chart;
  chart.title = "empty";
  chart.series = {{"x", {0, 1}, {kNaN, kNaN}, "", false}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find(">no data<"), std::string::npos);
  EXPECT_FALSE(has_nan_or_inf(svg));
}

TEST(SvgLineChart, LogScaleTicksArePowersOfTenAndSkipsNonPositive) {
  LineChart chart;
  chart.y_label = "lr";
  chart.log_y = true;
  chart.series = {{"lr", {0, 1, 2, 3, 4}, {1e-2, 1e-3, 0.0, -1.0, 1e-5}, "", false}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find("lr (log scale)"), std::string::npos);
  for (const char* tick : {">1e-05<", ">0.0001<", ">0.001<", ">0.01<"}) EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  EXPECT_FALSE(has_nan_or_inf(svg));
  // Equal ratios are equal distances: 1e-2 -> 1e-3 is one decade.
  const std::vector<double> ys = path_y(svg, palette_colour(0));
  ASSERT_EQ(ys.size(), 3u);  // 1e-2, 1e-3 joined; 1e-5 alone after the gap
  const double decade = ys[1] - ys[0];
  EXPECT_GT(decade, 0);
  EXPECT_NEAR(ys[2] - ys[1], 2 * decade, 0.2);
}

TEST(SvgLineChart, LegendThatDoesNotFitSaysHowManyMore) {
  LineChart chart;
  chart.height = 200;  // room for 8 legend rows
  for (int i = 0; i < 30; ++i) chart.series.push_back({"channel_" + std::to_string(i), {0, 1}, {0.1 * i, 0.2}, "", false});
  const std::string svg = line_chart_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find("\"start\">channel_0<"), std::string::npos);  // a legend entry
  EXPECT_EQ(svg.find("\"start\">channel_29<"), std::string::npos);
  EXPECT_NE(svg.find("more series<"), std::string::npos);
  EXPECT_NE(svg.find("<title>channel_29</title>"), std::string::npos);  // the line still names itself
}

TEST(SvgLineChart, IntegerXGetsIntegerTicks) {
  LineChart chart;
  chart.series = {{"loss", {0, 1, 2, 3}, {0.8, 0.7, 0.6, 0.5}, "", false}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_NE(svg.find("\"middle\">3<"), std::string::npos);
  EXPECT_EQ(svg.find("\"middle\">0.5<"), std::string::npos);  // no half epochs
  EXPECT_EQ(svg.find("\"middle\">2.5<"), std::string::npos);
}

TEST(SvgLineChart, FixedRangeAndEscapedNames) {
  LineChart chart;
  chart.y_min = 0;
  chart.y_max = 1;
  chart.series = {{"a<b & \"c\"", {0, 1}, {0.4, 0.6}, "#123456", false}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_NE(svg.find(">0<"), std::string::npos);
  EXPECT_NE(svg.find(">1<"), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#123456\""), std::string::npos);
}

TEST(SvgBarChart, BarsAnnotationsAndLogScale) {
  BarChart chart;
  chart.title = "presence";
  chart.value_label = "cases";
  chart.bars = {{"liver", 30, "30 / 30", ""}, {"tumour", 3, "", "#D55E00"}, {"none", kNaN, "n/a (both_empty)", ""}};
  std::string svg = bar_chart_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find(">30 / 30<"), std::string::npos);
  EXPECT_NE(svg.find(">3<"), std::string::npos);  // the value when no annotation is given
  EXPECT_NE(svg.find(">n/a (both_empty)<"), std::string::npos);
  EXPECT_EQ(count(svg, "fill=\"" + palette_colour(0) + "\""), 1u);
  EXPECT_EQ(count(svg, "fill=\"#D55E00\""), 1u);
  EXPECT_FALSE(has_nan_or_inf(svg));

  chart.log_x = true;
  chart.bars.push_back({"huge", 2e5, "", ""});
  svg = bar_chart_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find("cases (log scale)"), std::string::npos);
  EXPECT_NE(svg.find(">1000000<"), std::string::npos);  // ticks reach the next power of ten
}

TEST(SvgHeatmap, CellsMarkersAndMissingValues) {
  Heatmap chart;
  chart.title = "co-occurrence";
  chart.row_labels = {"organ", "lesion"};
  chart.column_labels = {"organ", "lesion"};
  chart.values = {{1.0, 0.1}, {1.0, kNaN}};
  chart.cell_text = {{"100%", "10%"}, {"100%", ""}};
  chart.marked = {{false, false}, {true, false}};
  chart.marker_meaning = "nested";
  std::string svg = heatmap_svg(chart);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_NE(svg.find(">10%<"), std::string::npos);
  EXPECT_NE(svg.find(">n/a<"), std::string::npos);
  EXPECT_NE(svg.find("fill=\"#d9d9d9\""), std::string::npos);  // the undefined cell
  EXPECT_NE(svg.find(">nested<"), std::string::npos);
  EXPECT_EQ(count(svg, "<path d=\"M"), 1u);  // one marked cell
  EXPECT_FALSE(has_nan_or_inf(svg));

  chart.show_cell_text = false;
  svg = heatmap_svg(chart);
  EXPECT_EQ(svg.find(">10%<"), std::string::npos);
  EXPECT_NE(svg.find("lesion / organ: 100%"), std::string::npos);  // still in the tooltip
}

TEST(SvgPlot, NumbersAndPalette) {
  EXPECT_EQ(format_chart_number(0.5), "0.5");
  EXPECT_EQ(format_chart_number(0.123456), "0.1235");
  EXPECT_EQ(format_chart_number(1234567), "1234567");
  EXPECT_EQ(format_chart_number(1e-5), "1e-05");
  EXPECT_EQ(format_chart_number(0), "0");
  EXPECT_EQ(format_chart_number(kNaN), "n/a");
  EXPECT_EQ(format_chart_number(-std::numeric_limits<double>::infinity()), "n/a");
  std::set<std::string> colours;
  for (std::size_t i = 0; i < kPaletteSize; ++i) colours.insert(palette_colour(i));
  EXPECT_EQ(colours.size(), kPaletteSize);
  EXPECT_EQ(palette_colour(kPaletteSize), palette_colour(0));
}

}  // namespace
}  // namespace mlseg
