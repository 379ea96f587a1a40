// Implementation of json_io.h.
#include "data/util/json_io.h"

#include "data/util/check.h"
#include "data/util/file_io.h"

namespace qwenqat {

Json parse_json(std::string_view text, const std::string& what) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    fail(what, ": invalid JSON (", e.what(), ")");
  }
}

Json read_json_file(const std::filesystem::path& path) {
  return parse_json(read_file(path), path.string());
}

void write_json_file(const std::filesystem::path& path, const Json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace qwenqat
