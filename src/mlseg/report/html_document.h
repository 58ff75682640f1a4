#pragma once
// A self-contained HTML page built section by section: inline CSS, no scripts, no external
// resources. Every piece of text is escaped; SVG and <img> markup is added as is.
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace mlseg {

struct HtmlCell {
  std::string text;
  std::string css_class;  ///< "num", "na" (undefined value), "warn", "ok", or empty
};

class HtmlDocument {
 public:
  void begin_section(const std::string& id, const std::string& title);
  void end_section();
  void subheading(const std::string& text);
  void paragraph(const std::string& text);
  /// Small grey text (sources, explanations).
  void note(const std::string& text);
  /// "<what> is missing (<path>): run <command>": a section without its input file.
  void missing(const std::string& what, const std::string& path, const std::string& command);
  void warning(const std::string& text);
  /// A list of "key: value" facts.
  void facts(const std::vector<std::pair<std::string, std::string>>& rows);
  void table(const std::vector<std::string>& header, const std::vector<std::vector<HtmlCell>>& rows);
  /// Trusted markup (the project's own SVG / <img>).
  void raw(const std::string& html);

  /// The whole page, with a table of contents of the sections.
  std::string finish(const std::string& title, const std::string& subtitle) const;

 private:
  std::ostringstream body_;
  std::vector<std::pair<std::string, std::string>> sections_;
};

/// A number with up to 4 significant digits (integers in full); "n/a" for non-finite values.
std::string format_report_number(double value);

/// A JSON number formatted, or for null / absent "n/a (<reason>)" (just "n/a" without reason).
HtmlCell value_cell(const nlohmann::ordered_json* value, const std::string& reason = "");
HtmlCell number_cell(double value);
HtmlCell text_cell(std::string text, std::string css_class = "");
/// "n/a (<reason>)", or "n/a".
std::string undefined_text(const std::string& reason);

}  // namespace mlseg
