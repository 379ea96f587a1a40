// YAML sweep files: a YAML document read into the same JSON value a .json
// sweep file gives, so one parser (sweep_spec.h) validates both. Plain
// scalars get YAML 1.2 core-schema types (null, true/false, integers, floats,
// otherwise strings); quoted scalars are always strings. Anchors and aliases
// are resolved by yaml-cpp; tags other than the defaults are rejected.
#pragma once

#include <filesystem>
#include <string>

#include "data/util/json_io.h"

namespace qwenqat::experiments {

// Parses YAML text. `origin` names the source in errors, which also give the
// line and column. Throws qwenqat::Error on a syntax error, a non-string key,
// a duplicate key or an unsupported tag.
Json yaml_to_json(const std::string& text, const std::string& origin);

// Reads and parses a YAML file; errors name the file.
Json read_yaml_file(const std::filesystem::path& path);

}  // namespace qwenqat::experiments
