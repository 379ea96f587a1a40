// Implementation of safetensors.h: header parsing and validation, sharded
// index, conversion to float32, and the writer.
#include "models/checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "data/util/check.h"
#include "data/util/half.h"
#include "data/util/json_io.h"

namespace qwenqat::models {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation

struct DTypeInfo {
  DType d;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF64, "F64", 8}, {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2}, {DType::kI8, "I8", 1}, {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
};

}  // namespace

size_t dtype_size(DType d) {
  for (auto& i : kDTypes)
    if (i.d == d) return i.size;
  return 0;
}

const char* dtype_name(DType d) {
  for (auto& i : kDTypes)
    if (i.d == d) return i.name;
  return "?";
}

DType parse_dtype(const std::string& s, const std::string& origin) {
  for (auto& i : kDTypes)
    if (s == i.name) return i.d;
  fail(origin, ": unsupported dtype \"", s,
       "\" (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
}

int64_t TensorView::numel() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

void convert_to_f32(const TensorView& t, float* out) {
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out, t.data, size_t(n) * 4);
      return;
    case DType::kF16:
    case DType::kBF16: {
      const bool bf = t.dtype == DType::kBF16;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = bf ? bf16_to_f32(h) : fp16_to_f32(h);
      }
      return;
    }
    case DType::kF64:
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, t.data + 8 * i, 8);
        out[i] = float(v);
      }
      return;
    default:
      fail("tensor ", t.name, ": dtype ", dtype_name(t.dtype), " cannot be converted to float");
  }
}

std::vector<float> to_f32(const TensorView& t) {
  std::vector<float> v(size_t(t.numel()));
  convert_to_f32(t, v.data());
  return v;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(path) {
  const std::string where = path.string();
  const auto bytes = file_.bytes();
  QWENQAT_CHECK(bytes.size() >= 8, where, ": file is too short to be safetensors (",
                bytes.size(), " bytes; truncated?)");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  QWENQAT_CHECK(n <= kMaxHeaderBytes, where, ": header length ", n,
                " exceeds the 100 MB limit (not a safetensors file?)");
  QWENQAT_CHECK(n <= bytes.size() - 8, where, ": header length ", n,
                " runs past the end of the file (", bytes.size(), " bytes; truncated?)");
  const Json header = parse_json(
      std::string_view(reinterpret_cast<const char*>(bytes.data()) + 8, size_t(n)),
      where + " header");
  QWENQAT_CHECK(header.is_object(), where, ": header is not a JSON object");
  const uint8_t* base = bytes.data() + 8 + n;
  const uint64_t data_size = bytes.size() - 8 - n;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      QWENQAT_CHECK(it->is_object(), where, ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        QWENQAT_CHECK(m->is_string(), where, ": __metadata__ value for \"", m.key(),
                      "\" is not a string");
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const std::string what = where + ": tensor " + name;
    const Json& e = *it;
    QWENQAT_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") &&
                      e.contains("data_offsets"),
                  what, ": entry needs dtype, shape and data_offsets");
    QWENQAT_CHECK(e["dtype"].is_string(), what, ": dtype is not a string");
    TensorView t;
    t.name = name;
    t.dtype = parse_dtype(e["dtype"].get<std::string>(), what);
    QWENQAT_CHECK(e["shape"].is_array(), what, ": shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : e["shape"]) {
      QWENQAT_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                    what, ": shape has a non-integer or negative dimension");
      const uint64_t v = d.get<uint64_t>();
      QWENQAT_CHECK(v == 0 || numel <= (uint64_t(1) << 62) / v, what, ": shape is too large");
      numel *= v;
      t.shape.push_back(int64_t(v));
    }
    const auto& off = e["data_offsets"];
    QWENQAT_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
                      off[1].is_number_unsigned(),
                  what, ": data_offsets must be [begin, end] non-negative integers");
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    QWENQAT_CHECK(b <= en, what, ": data_offsets begin ", b, " > end ", en);
    QWENQAT_CHECK(en <= data_size, what, ": data_offsets end ", en,
                  " is past the end of the data (", data_size, " bytes; truncated file?)");
    const uint64_t expect = numel * dtype_size(t.dtype);
    QWENQAT_CHECK(en - b == expect, what, ": byte range ", en - b, " does not match shape x dtype (",
                  expect, " bytes)");
    t.data = base + b;
    t.nbytes = size_t(en - b);
    ranges.emplace_back(b, en);
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // Non-overlapping ranges (zero-sized tensors may share an offset).
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& prev = ranges[order[i - 1]];
    const auto& cur = ranges[order[i]];
    QWENQAT_CHECK(cur.first >= prev.second || cur.first == cur.second, where, ": tensor ",
                  tensors_[order[i]].name, " overlaps tensor ", tensors_[order[i - 1]].name,
                  " (corrupt header)");
  }
  // Keep file order (by offset) for tensors(); rebuild the index.
  std::vector<TensorView> sorted;
  sorted.reserve(tensors_.size());
  for (size_t i : order) sorted.push_back(std::move(tensors_[i]));
  tensors_ = std::move(sorted);
  index_.clear();
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Checkpoint::Checkpoint(const std::filesystem::path& path) : path_(path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> shards;
  if (fs::is_directory(path)) {
    const fs::path index = path / "model.safetensors.index.json";
    const fs::path single = path / "model.safetensors";
    if (fs::exists(single)) {
      shards.push_back(single);
    } else if (fs::exists(index)) {
      const Json j = read_json_file(index);
      QWENQAT_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
                    ": missing \"weight_map\" object");
      std::vector<std::string> names;
      for (const auto& v : j["weight_map"]) {
        QWENQAT_CHECK(v.is_string(), index.string(), ": weight_map values must be file names");
        names.push_back(v.get<std::string>());
      }
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
      for (const auto& n : names) shards.push_back(path / n);
    } else {
      fail(path.string(), ": no model.safetensors or model.safetensors.index.json here");
    }
  } else {
    QWENQAT_CHECK(fs::exists(path), path.string(), ": no such file or directory");
    shards.push_back(path);
  }
  for (const auto& s : shards) {
    files_.push_back(std::make_unique<SafetensorsFile>(s));
    for (const auto& t : files_.back()->tensors()) {
      auto [it, inserted] = by_name_.emplace(t.name, &t);
      QWENQAT_CHECK(inserted, path.string(), ": tensor ", t.name, " appears in two shards");
    }
  }
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const TensorView* t = find(name);
  QWENQAT_CHECK(t != nullptr, "tensor ", name, " is missing from ", path_.string());
  return *t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> v;
  for (const auto& [n, t] : by_name_) v.push_back(n);
  return v;
}

size_t Checkpoint::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, t] : by_name_) n += t->nbytes;
  return n;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       std::map<std::string, std::string> metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    int64_t numel = 1;
    for (auto d : t.shape) numel *= d;
    const uint64_t nbytes = uint64_t(numel) * dtype_size(t.dtype);
    QWENQAT_CHECK(t.bytes.size() == nbytes, "write_safetensors: tensor ", t.name, " has ",
                  t.bytes.size(), " bytes, shape x dtype needs ", nbytes);
    QWENQAT_CHECK(!header.contains(t.name), "write_safetensors: duplicate tensor ", t.name);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string h = header.dump();
  h.append((8 - (8 + h.size()) % 8) % 8, ' ');
  AtomicFile out(path);
  const uint64_t n = h.size();
  out.stream().write(reinterpret_cast<const char*>(&n), 8);
  out.stream().write(h.data(), std::streamsize(h.size()));
  for (const auto& t : tensors)
    out.stream().write(reinterpret_cast<const char*>(t.bytes.data()),
                       std::streamsize(t.bytes.size()));
  out.commit();
}

}  // namespace qwenqat::models
