#pragma once
// JSON files: read with errors that name the file and the line; write atomically.
#include <filesystem>
#include <nlohmann/json.hpp>

namespace mlseg {

/// Parses `path` keeping object key order (channel order comes from it). Throws mlseg::Error
/// naming the file and the parse position.
nlohmann::ordered_json read_json_file(const std::filesystem::path& path);

/// Writes `value` (2-space indented, trailing newline) atomically.
void write_json_file(const std::filesystem::path& path, const nlohmann::ordered_json& value);

}  // namespace mlseg
