// Implementation of gguf_value.h: type names, factories and checked accessors.
#include "export/format/gguf_value.h"

#include <limits>

#include "data/util/check.h"

namespace qwenqat::format {
namespace {

bool is_unsigned(GgufType t) {
  return t == GgufType::kUint8 || t == GgufType::kUint16 || t == GgufType::kUint32 ||
         t == GgufType::kUint64;
}
bool is_signed(GgufType t) {
  return t == GgufType::kInt8 || t == GgufType::kInt16 || t == GgufType::kInt32 ||
         t == GgufType::kInt64;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
      return "UINT8";
    case GgufType::kInt8:
      return "INT8";
    case GgufType::kUint16:
      return "UINT16";
    case GgufType::kInt16:
      return "INT16";
    case GgufType::kUint32:
      return "UINT32";
    case GgufType::kInt32:
      return "INT32";
    case GgufType::kFloat32:
      return "FLOAT32";
    case GgufType::kBool:
      return "BOOL";
    case GgufType::kString:
      return "STRING";
    case GgufType::kArray:
      return "ARRAY";
    case GgufType::kUint64:
      return "UINT64";
    case GgufType::kInt64:
      return "INT64";
    case GgufType::kFloat64:
      return "FLOAT64";
  }
  return "INVALID";
}

bool gguf_type_valid(uint32_t t) { return t <= 12; }

size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

GgufValue GgufValue::uint32(uint32_t v) {
  GgufValue x;
  x.type = GgufType::kUint32;
  x.u = v;
  return x;
}
GgufValue GgufValue::int32(int32_t v) {
  GgufValue x;
  x.type = GgufType::kInt32;
  x.i = v;
  return x;
}
GgufValue GgufValue::uint64(uint64_t v) {
  GgufValue x;
  x.type = GgufType::kUint64;
  x.u = v;
  return x;
}
GgufValue GgufValue::float32(float v) {
  GgufValue x;
  x.type = GgufType::kFloat32;
  x.f = v;
  return x;
}
GgufValue GgufValue::boolean(bool v) {
  GgufValue x;
  x.type = GgufType::kBool;
  x.u = v ? 1 : 0;
  return x;
}
GgufValue GgufValue::string(std::string v) {
  GgufValue x;
  x.type = GgufType::kString;
  x.s = std::move(v);
  return x;
}
GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem_type = GgufType::kString;
  x.array.reserve(v.size());
  for (const auto& s : v) x.array.push_back(string(s));
  return x;
}
GgufValue GgufValue::int32s(const std::vector<int32_t>& v) {
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem_type = GgufType::kInt32;
  x.array.reserve(v.size());
  for (int32_t e : v) x.array.push_back(int32(e));
  return x;
}
GgufValue GgufValue::float32s(const std::vector<float>& v) {
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem_type = GgufType::kFloat32;
  x.array.reserve(v.size());
  for (float e : v) x.array.push_back(float32(e));
  return x;
}

std::string GgufValue::type_string() const {
  if (type != GgufType::kArray) return gguf_type_name(type);
  return std::string("ARRAY[") + gguf_type_name(elem_type) + "]";
}

int64_t GgufValue::as_int(const std::string& key) const {
  if (is_signed(type)) return i;
  if (is_unsigned(type)) {
    QWENQAT_CHECK(u <= uint64_t(std::numeric_limits<int64_t>::max()), "GGUF key ", key, ": value ",
                  u, " is too large");
    return int64_t(u);
  }
  fail("GGUF key ", key, " should be an integer, but it is ", type_string());
}

double GgufValue::as_float(const std::string& key) const {
  QWENQAT_CHECK(type == GgufType::kFloat32 || type == GgufType::kFloat64, "GGUF key ", key,
                " should be a float, but it is ", type_string());
  return f;
}

bool GgufValue::as_bool(const std::string& key) const {
  QWENQAT_CHECK(type == GgufType::kBool, "GGUF key ", key, " should be BOOL, but it is ",
                type_string());
  return u != 0;
}

const std::string& GgufValue::as_string(const std::string& key) const {
  QWENQAT_CHECK(type == GgufType::kString, "GGUF key ", key, " should be STRING, but it is ",
                type_string());
  return s;
}

std::vector<std::string> GgufValue::as_strings(const std::string& key) const {
  QWENQAT_CHECK(type == GgufType::kArray && elem_type == GgufType::kString, "GGUF key ", key,
                " should be ARRAY[STRING], but it is ", type_string());
  std::vector<std::string> out;
  out.reserve(array.size());
  for (const auto& v : array) out.push_back(v.s);
  return out;
}

std::vector<int64_t> GgufValue::as_ints(const std::string& key) const {
  QWENQAT_CHECK(type == GgufType::kArray && (is_signed(elem_type) || is_unsigned(elem_type)),
                "GGUF key ", key, " should be an ARRAY of integers, but it is ", type_string());
  std::vector<int64_t> out;
  out.reserve(array.size());
  for (const auto& v : array) out.push_back(v.as_int(key));
  return out;
}

}  // namespace qwenqat::format
