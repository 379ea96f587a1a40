// Implementation of gguf_writer.h: serializes metadata and tensor infos into a
// buffer, then streams header, padding and tensor data to an AtomicFile.
#include "export/format/gguf_writer.h"

#include <cstring>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/half.h"

namespace qwenqat::format {
namespace {

class Bytes {
 public:
  template <class T>
  void put(T v) {
    const size_t n = buf_.size();
    buf_.resize(n + sizeof(T));
    std::memcpy(buf_.data() + n, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void put_value(const GgufValue& v) {
    switch (v.type) {
      case GgufType::kUint8:
        put<uint8_t>(uint8_t(v.u));
        break;
      case GgufType::kInt8:
        put<int8_t>(int8_t(v.i));
        break;
      case GgufType::kUint16:
        put<uint16_t>(uint16_t(v.u));
        break;
      case GgufType::kInt16:
        put<int16_t>(int16_t(v.i));
        break;
      case GgufType::kUint32:
        put<uint32_t>(uint32_t(v.u));
        break;
      case GgufType::kInt32:
        put<int32_t>(int32_t(v.i));
        break;
      case GgufType::kUint64:
        put<uint64_t>(v.u);
        break;
      case GgufType::kInt64:
        put<int64_t>(v.i);
        break;
      case GgufType::kFloat32:
        put<float>(float(v.f));
        break;
      case GgufType::kFloat64:
        put<double>(v.f);
        break;
      case GgufType::kBool:
        put<uint8_t>(v.u ? 1 : 0);
        break;
      case GgufType::kString:
        put_string(v.s);
        break;
      case GgufType::kArray:
        put<uint32_t>(uint32_t(v.elem_type));
        put<uint64_t>(v.array.size());
        for (const auto& e : v.array) put_value(e);
        break;
    }
  }
  const std::string& str() const { return buf_; }
  size_t size() const { return buf_.size(); }

 private:
  std::string buf_;
};

void check_array(const std::string& key, const GgufValue& v) {
  if (v.type != GgufType::kArray) return;
  for (const auto& e : v.array) {
    QWENQAT_CHECK(e.type == v.elem_type, "GGUF key ", key, ": array of ",
                  gguf_type_name(v.elem_type), " holds an element of type ", e.type_string());
    check_array(key, e);
  }
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  QWENQAT_CHECK(alignment != 0 && (alignment & (alignment - 1)) == 0,
                "GGUF alignment must be a power of two, got ", alignment);
  set("general.alignment", GgufValue::uint32(alignment));
}

void GgufWriter::set(const std::string& key, GgufValue value) {
  QWENQAT_CHECK(!key.empty(), "GGUF keys must not be empty");
  QWENQAT_CHECK(keys_.count(key) == 0, "GGUF key ", key, " is set twice");
  check_array(key, value);
  keys_[key] = kv_.size();
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& shape,
                            GgmlType type, std::vector<uint8_t> data) {
  QWENQAT_CHECK(!name.empty(), "GGUF tensor names must not be empty");
  QWENQAT_CHECK(names_.count(name) == 0, "GGUF tensor ", name, " is added twice");
  QWENQAT_CHECK(!shape.empty() && shape.size() <= 4, "GGUF tensor ", name, " has ", shape.size(),
                " dimensions (1 to 4 are allowed)");
  int64_t rows = 1;
  for (int64_t d : shape) {
    QWENQAT_CHECK(d >= 1, "GGUF tensor ", name, " has a non-positive dimension ", d);
    rows *= d;
  }
  rows /= shape.back();
  const int64_t expect = ggml_row_bytes(type, shape.back(), "GGUF tensor " + name) * rows;
  QWENQAT_CHECK(int64_t(data.size()) == expect, "GGUF tensor ", name, ": ", data.size(),
                " bytes given, ", ggml_type_name(uint32_t(type)), " needs ", expect);
  names_[name] = tensors_.size();
  tensors_.push_back({name, shape, type, std::move(data)});
}

void GgufWriter::add_float_tensor(const std::string& name, const std::vector<int64_t>& shape,
                                  const float* data, GgmlType type) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<uint8_t> bytes;
  if (type == GgmlType::kF32) {
    bytes.resize(size_t(n) * 4);
    std::memcpy(bytes.data(), data, bytes.size());
  } else if (type == GgmlType::kF16) {
    bytes.resize(size_t(n) * 2);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = f32_to_fp16(data[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  } else {
    fail("GGUF tensor ", name, ": float tensors are written as F32 or F16, not ",
         ggml_type_name(uint32_t(type)));
  }
  add_tensor(name, shape, type, std::move(bytes));
}

void GgufWriter::write(const std::filesystem::path& path) const {
  Bytes head;
  head.put<uint32_t>(0x46554747u);  // "GGUF" little-endian
  head.put<uint32_t>(3);
  head.put<uint64_t>(tensors_.size());
  head.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    head.put_string(key);
    head.put<uint32_t>(uint32_t(value.type));
    head.put_value(value);
  }
  auto align = [&](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    head.put_string(t.name);
    head.put<uint32_t>(uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) head.put<uint64_t>(uint64_t(*it));
    head.put<uint32_t>(uint32_t(t.type));
    head.put<uint64_t>(offset);
    offset = align(offset + t.data.size());
  }
  AtomicFile file(path);
  auto& out = file.stream();
  const std::string zeros(alignment_, '\0');
  out.write(head.str().data(), std::streamsize(head.size()));
  out.write(zeros.data(), std::streamsize(align(head.size()) - head.size()));
  for (const auto& t : tensors_) {
    out.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size()));
    out.write(zeros.data(), std::streamsize(align(t.data.size()) - t.data.size()));
  }
  file.commit();
}

}  // namespace qwenqat::format
