// GGUF metadata values: the 13 value types of the GGUF specification and one
// value type holding any of them (scalars, strings, arrays, nested arrays).
// Shared by the GGUF reader and writer. Torch-free; plain value semantics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qwenqat::format {

// GGUF metadata value type ids (gguf_metadata_value_type).
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* gguf_type_name(GgufType t);  // "UINT32", "STRING", ...
bool gguf_type_valid(uint32_t t);
// Bytes of a fixed-size scalar type; 0 for STRING and ARRAY.
size_t gguf_scalar_size(GgufType t);

// One metadata value. Integers are held in `u` (unsigned types, bool) or `i`
// (signed types), floats in `f`, strings in `s`; an ARRAY holds elem_type and
// its elements in `array` (each of type elem_type).
struct GgufValue {
  GgufType type = GgufType::kUint32;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  GgufType elem_type = GgufType::kUint8;
  std::vector<GgufValue> array;

  static GgufValue uint32(uint32_t v);
  static GgufValue int32(int32_t v);
  static GgufValue uint64(uint64_t v);
  static GgufValue float32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue int32s(const std::vector<int32_t>& v);
  static GgufValue float32s(const std::vector<float>& v);

  // Checked accessors: throw qwenqat::Error naming `key` and both types when
  // the value is not of a fitting type (any integer type for as_int; any
  // float type for as_float; as_strings wants ARRAY of STRING).
  int64_t as_int(const std::string& key) const;
  double as_float(const std::string& key) const;
  bool as_bool(const std::string& key) const;
  const std::string& as_string(const std::string& key) const;
  std::vector<std::string> as_strings(const std::string& key) const;
  std::vector<int64_t> as_ints(const std::string& key) const;
  // "UINT32", or "ARRAY[STRING]".
  std::string type_string() const;
};

}  // namespace qwenqat::format
