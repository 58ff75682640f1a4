#include "mlseg/io/json_file.h"

#include <fstream>
#include <sstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"

namespace mlseg {

nlohmann::ordered_json read_json_file(const std::filesystem::path& path) {
  const ErrorLocation where{path.string(), "", ""};
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw Error("cannot open the file", "check that it exists and is readable", where);
  std::stringstream buffer;
  buffer << stream.rdbuf();
  try {
    return nlohmann::ordered_json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& error) {
    std::string reason = error.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..." -> from "parse error".
    const auto start = reason.find("parse error");
    if (start != std::string::npos) reason = reason.substr(start);
    throw Error("invalid JSON: " + reason, "fix the syntax (a JSON validator shows the exact spot)", where);
  } catch (const nlohmann::json::out_of_range& error) {
    // A number past double's range (1e999): found by tests/fuzz/splits_json_fuzz.
    std::string reason = error.what();
    const auto start = reason.find("number overflow");
    if (start != std::string::npos) reason = reason.substr(start);
    throw Error("invalid JSON: " + reason, "write the number within double's range", where);
  }
}

void write_json_file(const std::filesystem::path& path, const nlohmann::ordered_json& value) {
  write_text_file_atomically(path, value.dump(2) + "\n");
}

}  // namespace mlseg
