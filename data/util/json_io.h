// JSON helpers over nlohmann::json with errors that name the file and field.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace qwenqat {

using Json = nlohmann::json;

// Parses `path` as JSON; throws qwenqat::Error naming the file (and the byte
// position of a syntax error).
Json read_json_file(const std::filesystem::path& path);

// Parses a JSON text; `what` names its origin in error messages.
Json parse_json(std::string_view text, const std::string& what);

// Writes `j` atomically (pretty-printed with `indent` >= 0, compact otherwise).
void write_json_file(const std::filesystem::path& path, const Json& j, int indent = 2);

}  // namespace qwenqat
