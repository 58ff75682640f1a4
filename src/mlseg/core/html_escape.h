#pragma once
// Text placed into HTML or SVG (element content and quoted attribute values).
#include <string>
#include <string_view>

namespace mlseg {

/// Replaces & < > " ' by entities, so that names from dataset.json cannot break the markup.
std::string escape_html(std::string_view text);

}  // namespace mlseg
