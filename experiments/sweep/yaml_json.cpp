// YAML -> JSON for sweep files (contract: yaml_json.h), on yaml-cpp.
#include "experiments/sweep/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>

#include "data/util/check.h"
#include "data/util/file_io.h"

namespace qwenqat::experiments {
namespace {

std::string where(const std::string& origin, const YAML::Mark& m) {
  if (m.is_null()) return origin;
  return origin + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

// A plain (unquoted) scalar typed by the YAML 1.2 core schema.
Json plain_scalar(const std::string& s, const std::string& at) {
  static const std::regex kNull("~|null|Null|NULL|");
  static const std::regex kTrue("true|True|TRUE"), kFalse("false|False|FALSE");
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  static const std::regex kSpecial(
      "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)|0x[0-9a-fA-F]+|0o[0-7]+");
  if (std::regex_match(s, kNull)) return nullptr;
  if (std::regex_match(s, kTrue)) return true;
  if (std::regex_match(s, kFalse)) return false;
  if (std::regex_match(s, kInt)) {
    errno = 0;
    const long long v = std::strtoll(s.c_str(), nullptr, 10);
    QWENQAT_CHECK(errno != ERANGE, at, ": the integer ", s, " does not fit in 64 bits");
    return static_cast<int64_t>(v);
  }
  if (std::regex_match(s, kFloat)) {
    const double v = std::strtod(s.c_str(), nullptr);
    QWENQAT_CHECK(std::isfinite(v), at, ": the number ", s, " is out of range");
    return v;
  }
  QWENQAT_CHECK(!std::regex_match(s, kSpecial), at, ": ", s,
                " (infinity, NaN, hexadecimal or octal) has no JSON form; write a decimal number");
  return s;
}

Json to_json(const YAML::Node& n, const std::string& origin) {
  const std::string at = where(origin, n.Mark());
  const std::string& tag = n.Tag();
  QWENQAT_CHECK(tag.empty() || tag == "?" || tag == "!", at, ": the YAML tag ", tag,
                " is not supported in sweep files; remove it");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return tag == "!" ? Json(n.Scalar()) : plain_scalar(n.Scalar(), at);
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (const auto& item : n) a.push_back(to_json(item, origin));
      return a;
    }
    case YAML::NodeType::Map: {
      Json o = Json::object();
      std::set<std::string> seen;
      for (const auto& kv : n) {
        const std::string kat = where(origin, kv.first.Mark());
        QWENQAT_CHECK(kv.first.IsScalar(), kat, ": a mapping key must be a plain string");
        const std::string key = kv.first.Scalar();
        QWENQAT_CHECK(seen.insert(key).second, kat, ": the key \"", key,
                      "\" appears twice in one mapping");
        o[key] = to_json(kv.second, origin);
      }
      return o;
    }
  }
  return nullptr;
}

}  // namespace

Json yaml_to_json(const std::string& text, const std::string& origin) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    throw Error(where(origin, e.mark) + ": YAML syntax error: " + e.msg);
  }
  QWENQAT_CHECK(docs.size() == 1, origin, ": expected one YAML document, found ", docs.size());
  return to_json(docs.front(), origin);
}

Json read_yaml_file(const std::filesystem::path& path) {
  return yaml_to_json(read_file(path), path.string());
}

}  // namespace qwenqat::experiments
