#include "mlseg/report/html_document.h"

#include <cmath>

#include "mlseg/core/html_escape.h"
#include "mlseg/core/svg_plot.h"

namespace mlseg {

namespace {

constexpr const char* kStyle = R"(
body{font-family:sans-serif;margin:24px auto;max-width:1180px;color:#222;background:#fff;line-height:1.4}
h1{font-size:24px;margin-bottom:4px}h2{font-size:20px;border-bottom:2px solid #0072B2;padding-bottom:4px;margin-top:36px}
h3{font-size:16px;margin-top:22px}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.na{color:#8a5a00;background:#fff8e6}
td.warn{color:#a33a00;background:#fdeee6;font-weight:bold}
td.ok{color:#006644}
p.note{color:#666;font-size:12px}
p.missing{color:#8a5a00;background:#fff8e6;border-left:4px solid #E69F00;padding:6px 10px}
p.warning{color:#a33a00;background:#fdeee6;border-left:4px solid #D55E00;padding:6px 10px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px;font-size:14px}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0}
.charts svg{display:block;margin:8px 0;max-width:100%;height:auto}
.slices{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.slices figure{margin:0}.slices figcaption{font-size:12px;color:#444}
.legend span.swatch{display:inline-block;width:14px;height:14px;vertical-align:middle;margin:0 4px 0 12px;border:1px solid #333}
nav ul{columns:2;font-size:14px}
)";

}  // namespace

void HtmlDocument::begin_section(const std::string& id, const std::string& title) {
  sections_.emplace_back(id, title);
  body_ << "<section id=\"" << escape_html(id) << "\">\n<h2>" << escape_html(title) << "</h2>\n";
}

void HtmlDocument::end_section() { body_ << "</section>\n"; }

void HtmlDocument::subheading(const std::string& text) { body_ << "<h3>" << escape_html(text) << "</h3>\n"; }

void HtmlDocument::paragraph(const std::string& text) { body_ << "<p>" << escape_html(text) << "</p>\n"; }

void HtmlDocument::note(const std::string& text) { body_ << "<p class=\"note\">" << escape_html(text) << "</p>\n"; }

void HtmlDocument::missing(const std::string& what, const std::string& path, const std::string& command) {
  body_ << "<p class=\"missing\">No " << escape_html(what) << " (" << escape_html(path) << "): run <code>"
        << escape_html(command) << "</code>.</p>\n";
}

void HtmlDocument::warning(const std::string& text) {
  body_ << "<p class=\"warning\">" << escape_html(text) << "</p>\n";
}

void HtmlDocument::facts(const std::vector<std::pair<std::string, std::string>>& rows) {
  body_ << "<dl class=\"facts\">\n";
  for (const auto& [key, value] : rows) body_ << "<dt>" << escape_html(key) << "</dt><dd>" << escape_html(value) << "</dd>\n";
  body_ << "</dl>\n";
}

void HtmlDocument::table(const std::vector<std::string>& header, const std::vector<std::vector<HtmlCell>>& rows) {
  body_ << "<table>\n<thead><tr>";
  for (const std::string& name : header) body_ << "<th>" << escape_html(name) << "</th>";
  body_ << "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    body_ << "<tr>";
    for (const HtmlCell& cell : row) {
      body_ << "<td";
      if (!cell.css_class.empty()) body_ << " class=\"" << escape_html(cell.css_class) << '"';
      body_ << '>' << escape_html(cell.text) << "</td>";
    }
    body_ << "</tr>\n";
  }
  body_ << "</tbody>\n</table>\n";
}

void HtmlDocument::raw(const std::string& html) { body_ << html << '\n'; }

std::string HtmlDocument::finish(const std::string& title, const std::string& subtitle) const {
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       // No favicon request: the page must load nothing from anywhere.
       << "<link rel=\"icon\" href=\"data:,\">\n"
       << "<title>" << escape_html(title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n"
       << "<h1>" << escape_html(title) << "</h1>\n<p class=\"note\">" << escape_html(subtitle) << "</p>\n<nav><ul>\n";
  for (const auto& [id, section_title] : sections_) {
    page << "<li><a href=\"#" << escape_html(id) << "\">" << escape_html(section_title) << "</a></li>\n";
  }
  page << "</ul></nav>\n" << body_.str() << "</body>\n</html>\n";
  return page.str();
}

std::string format_report_number(double value) { return format_chart_number(value); }

std::string undefined_text(const std::string& reason) { return reason.empty() ? "n/a" : "n/a (" + reason + ")"; }

HtmlCell value_cell(const nlohmann::ordered_json* value, const std::string& reason) {
  if (value != nullptr && value->is_number()) {
    const double number = value->get<double>();
    if (std::isfinite(number)) return {format_report_number(number), "num"};
  }
  if (value != nullptr && value->is_string()) return {value->get<std::string>(), ""};
  return {undefined_text(reason), "na"};
}

HtmlCell number_cell(double value) {
  if (!std::isfinite(value)) return {undefined_text(""), "na"};
  return {format_report_number(value), "num"};
}

HtmlCell text_cell(std::string text, std::string css_class) { return {std::move(text), std::move(css_class)}; }

}  // namespace mlseg
