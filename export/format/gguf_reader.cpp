// Implementation of gguf_reader.h: a bounds-checked cursor over the mapped
// file parses the header, metadata and tensor infos; tensors convert to float
// with llama.cpp's formulas (gguf_blocks.h).
#include "export/format/gguf_reader.h"

#include <cstring>
#include <limits>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::format {
namespace {

constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// Reads little-endian values from [data, data+size) with bounds checks.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, std::string file)
      : data_(data), size_(size), file_(std::move(file)) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    QWENQAT_CHECK(n <= remaining(), file_, ": truncated GGUF file: ", what, " needs ", n,
                  " bytes at offset ", pos_, " but only ", remaining(), " remain");
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " (string length)");
    QWENQAT_CHECK(n <= remaining(), file_, ": ", what, ": string length ", n,
                  " runs past the end of the file (", remaining(), " bytes remain)");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }
  const std::string& file() const { return file_; }

 private:
  const uint8_t* data_;
  uint64_t size_, pos_ = 0;
  std::string file_;
};

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::kUint8:
      v.u = c.read<uint8_t>(key);
      break;
    case GgufType::kInt8:
      v.i = c.read<int8_t>(key);
      break;
    case GgufType::kUint16:
      v.u = c.read<uint16_t>(key);
      break;
    case GgufType::kInt16:
      v.i = c.read<int16_t>(key);
      break;
    case GgufType::kUint32:
      v.u = c.read<uint32_t>(key);
      break;
    case GgufType::kInt32:
      v.i = c.read<int32_t>(key);
      break;
    case GgufType::kUint64:
      v.u = c.read<uint64_t>(key);
      break;
    case GgufType::kInt64:
      v.i = c.read<int64_t>(key);
      break;
    case GgufType::kFloat32:
      v.f = c.read<float>(key);
      break;
    case GgufType::kFloat64:
      v.f = c.read<double>(key);
      break;
    case GgufType::kBool: {
      const uint8_t b = c.read<uint8_t>(key);
      QWENQAT_CHECK(b <= 1, c.file(), ": GGUF key ", key, ": BOOL byte is ", int(b),
                    ", expected 0 or 1");
      v.u = b;
      break;
    }
    case GgufType::kString:
      v.s = c.read_string("GGUF key " + key);
      break;
    case GgufType::kArray: {
      QWENQAT_CHECK(depth < kMaxArrayDepth, c.file(), ": GGUF key ", key,
                    ": arrays nested deeper than ", kMaxArrayDepth);
      const uint32_t et = c.read<uint32_t>(key + " (array type)");
      QWENQAT_CHECK(gguf_type_valid(et), c.file(), ": GGUF key ", key,
                    ": unknown array element type ", et);
      v.elem_type = GgufType(et);
      const uint64_t n = c.read<uint64_t>(key + " (array length)");
      // Every element takes at least 1 byte (scalars), 8 (strings) or 12 (arrays).
      const uint64_t min_size = v.elem_type == GgufType::kString  ? 8
                                : v.elem_type == GgufType::kArray ? 12
                                                                  : gguf_scalar_size(v.elem_type);
      QWENQAT_CHECK(n <= c.remaining() / min_size, c.file(), ": GGUF key ", key, ": array length ",
                    n, " cannot fit in the ", c.remaining(), " bytes left in the file");
      v.array.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k)
        v.array.push_back(read_value(c, v.elem_type, key, depth + 1));
      break;
    }
  }
  return v;
}

}  // namespace

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::vector<int64_t> GgufTensorInfo::shape() const { return {dims.rbegin(), dims.rend()}; }

GgufFile::GgufFile(const std::filesystem::path& path) : file_(path) {
  const std::string name = path.string();
  Cursor c(file_.data(), file_.size(), name);
  QWENQAT_CHECK(file_.size() >= 4 && std::memcmp(file_.data(), "GGUF", 4) == 0, name,
                " is not a GGUF file (it does not start with the magic \"GGUF\")");
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("version");
  QWENQAT_CHECK(version_ != 0x02000000u && version_ != 0x03000000u, name,
                " is a big-endian GGUF file; only little-endian files are supported");
  QWENQAT_CHECK(version_ == 2 || version_ == 3, name, ": unsupported GGUF version ", version_,
                " (versions 2 and 3 are supported)");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // A KV takes >= 13 bytes (key length, type, 1-byte value), a tensor info >= 28.
  QWENQAT_CHECK(n_kv <= c.remaining() / 13, name, ": metadata count ", n_kv,
                " is impossible for a file of ", file_.size(), " bytes");
  QWENQAT_CHECK(n_tensors <= c.remaining() / 28, name, ": tensor count ", n_tensors,
                " is impossible for a file of ", file_.size(), " bytes");

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("metadata key " + std::to_string(k));
    const uint32_t t = c.read<uint32_t>("type of GGUF key " + key);
    QWENQAT_CHECK(gguf_type_valid(t), name, ": GGUF key ", key, " has unknown value type ", t);
    GgufValue v = read_value(c, GgufType(t), key, 0);
    QWENQAT_CHECK(kv_index_.emplace(key, kv_.size()).second, name, ": duplicate GGUF key ", key);
    kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = find("general.alignment")) {
    QWENQAT_CHECK(a->type == GgufType::kUint32, name, ": general.alignment must be UINT32, it is ",
                  a->type_string());
    QWENQAT_CHECK(a->u != 0 && (a->u & (a->u - 1)) == 0, name, ": general.alignment ", a->u,
                  " is not a power of two");
    alignment_ = a->u;
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    t.name = c.read_string("tensor name " + std::to_string(k));
    const uint32_t nd = c.read<uint32_t>("tensor " + t.name + " dimension count");
    QWENQAT_CHECK(nd >= 1 && nd <= kMaxDims, name, ": tensor ", t.name, " has ", nd,
                  " dimensions (1 to ", kMaxDims, " are allowed)");
    int64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t dim = c.read<uint64_t>("tensor " + t.name + " dims");
      QWENQAT_CHECK(
          dim >= 1 && dim <= (uint64_t(1) << 40) && uint64_t(numel) <= (uint64_t(1) << 50) / dim,
          name, ": tensor ", t.name, " has an invalid or too large dimension ", dim);
      numel *= int64_t(dim);
      t.dims.push_back(int64_t(dim));
    }
    const uint32_t type = c.read<uint32_t>("tensor " + t.name + " type");
    QWENQAT_CHECK(ggml_type_traits(type) != nullptr, name, ": tensor ", t.name,
                  " has unknown ggml tensor type id ", type);
    t.type = GgmlType(type);
    t.offset = c.read<uint64_t>("tensor " + t.name + " offset");
    QWENQAT_CHECK(t.offset % alignment_ == 0, name, ": tensor ", t.name, " offset ", t.offset,
                  " is not a multiple of the alignment ", alignment_);
    t.nbytes = size_t(ggml_row_bytes(t.type, t.dims[0], name + ": tensor " + t.name) *
                      (numel / t.dims[0]));
    QWENQAT_CHECK(tensor_index_.emplace(t.name, tensors_.size()).second, name,
                  ": duplicate tensor ", t.name);
    tensors_.push_back(std::move(t));
  }
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  QWENQAT_CHECK(n_tensors == 0 || data_offset_ <= file_.size(), name,
                ": truncated GGUF file: the tensor data section starts past the end");
  const uint64_t data_size = n_tensors == 0 ? 0 : file_.size() - data_offset_;
  for (auto& t : tensors_) {
    QWENQAT_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset, name, ": tensor ",
                  t.name, " (", t.nbytes, " bytes at data offset ", t.offset,
                  ") runs past the end of the file; the file is truncated or corrupt");
    t.data = file_.data() + data_offset_ + t.offset;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const GgufValue* v = find(key);
  QWENQAT_CHECK(v != nullptr, "GGUF key ", key, " is missing from ", path().string());
  return *v;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::get_tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  QWENQAT_CHECK(t != nullptr, "tensor ", name, " is missing from ", path().string());
  return *t;
}

std::vector<float> GgufFile::to_f32(const GgufTensorInfo& t) const {
  const int64_t n = t.numel();
  std::vector<float> out(static_cast<size_t>(n));
  switch (t.type) {
    case GgmlType::kF32:
      std::memcpy(out.data(), t.data, size_t(n) * 4);
      break;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[size_t(i)] = t.type == GgmlType::kF16 ? fp16_to_f32(h) : bf16_to_f32(h);
      }
      break;
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
      dequantize_blocks(t.type, t.data, n, out.data());
      break;
    default:
      fail(path().string(), ": tensor ", t.name, " has type ", ggml_type_name(uint32_t(t.type)),
           ", which this reader cannot convert (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  }
  return out;
}

}  // namespace qwenqat::format
