// Implementation of h5_model_reader.h: HDF5 C API for structure and offsets,
// then one memory map for the data.
#include "export/format/h5_model_reader.h"

#include "data/util/check.h"
#include "export/format/h5_model_writer.h"
#include "export/format/h5_util.h"

namespace qwenqat::format {

namespace {

const char* kReexport = "re-export the model with `qwenqat export`";

// Where one dataset's bytes lie in the file (before the file is mapped).
struct Range {
  uint64_t offset = 0, size = 0;
  size_t align = 1;  // element alignment the pointer needs
  std::string what;
};

struct Pending {
  H5Tensor tensor;
  Range data, scales, offsets;  // float tensors use `data` only
  bool has_offsets = false;
};

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

std::string file_msg(const std::filesystem::path& p) { return p.string(); }

// Checks the dataset is contiguous and fully allocated with `expected` bytes.
Range contiguous_range(hid_t ds, uint64_t expected, size_t align, const std::string& what) {
  h5::Id dcpl(H5Dget_create_plist(ds), "cannot read the storage properties of " + what);
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  QWENQAT_CHECK(layout == H5D_CONTIGUOUS, what,
                " is not stored contiguously (chunked or compact layout); qwenqat memory-maps "
                "its datasets and needs contiguous, uncompressed storage: ",
                kReexport);
  QWENQAT_CHECK(H5Pget_nfilters(dcpl) == 0, what, " is filtered (compressed): ", kReexport);
  const haddr_t offset = H5Dget_offset(ds);
  H5Eclear2(H5E_DEFAULT);
  QWENQAT_CHECK(
      offset != HADDR_UNDEF, what,
      " has no data in the file (it was never written; the file is incomplete): ", kReexport);
  const hsize_t storage = H5Dget_storage_size(ds);
  QWENQAT_CHECK(storage == expected, what, " holds ", storage,
                " bytes but its shape and type need ", expected,
                " (the file is corrupt): ", kReexport);
  return {uint64_t(offset), uint64_t(storage), align, what};
}

// Opens dataset `name` of tensor group `g`, checks its type and dims.
h5::Id open_dataset(hid_t g, const char* name, hid_t want_type, const char* type_name,
                    const std::vector<hsize_t>& want_dims, const std::string& what) {
  const htri_t exists = H5Lexists(g, name, H5P_DEFAULT);
  h5::check(exists < 0 ? -1 : 0,
            "cannot look up " + what + ": the file is truncated or corrupt (" + kReexport + ")");
  QWENQAT_CHECK(exists > 0, what, " is missing (", kReexport, ")");
  h5::Id ds(H5Dopen2(g, name, H5P_DEFAULT), "cannot open " + what);
  h5::Id type(H5Dget_type(ds), "cannot read the type of " + what);
  QWENQAT_CHECK(H5Tequal(type, want_type) > 0, what, " must have type ", type_name,
                " (the file is corrupt or not written by qwenqat)");
  const auto dims = h5::dataset_dims(ds, what);
  if (dims != want_dims) {
    std::string got, want;
    for (auto d : dims) got += (got.empty() ? "" : ", ") + std::to_string(d);
    for (auto d : want_dims) want += (want.empty() ? "" : ", ") + std::to_string(d);
    fail(what, " has shape [", got, "] but its attributes say [", want, "] (the file is corrupt)");
  }
  return ds;
}

std::string read_text(hid_t file, const char* name, bool required, const std::string& path) {
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  h5::check(exists < 0 ? -1 : 0, std::string("cannot look up dataset ") + name + " of " + path +
                                     ": the file is truncated or corrupt (" + kReexport + ")");
  if (exists == 0) {
    QWENQAT_CHECK(!required, path, " has no ", name, " dataset (", kReexport, ")");
    return {};
  }
  const std::string what = std::string("dataset ") + name + " of " + path;
  h5::Id ds(H5Dopen2(file, name, H5P_DEFAULT), "cannot open " + what);
  h5::Id type(H5Dget_type(ds), "cannot read the type of " + what);
  QWENQAT_CHECK(H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1, what,
                " must hold uint8 text bytes");
  const auto dims = h5::dataset_dims(ds, what);
  QWENQAT_CHECK(dims.size() == 1, what, " must be one-dimensional");
  std::string text(size_t(dims[0]), '\0');
  if (!text.empty()) {
    h5::check(H5Dread(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()),
              "cannot read " + what + " (truncated or corrupt file?)");
  }
  return text;
}

int64_t need_int(hid_t obj, const char* name, const std::string& owner) {
  auto v = h5::read_int_attr(obj, name, owner);
  QWENQAT_CHECK(v.has_value(), owner, " has no attribute ", name, " (", kReexport, ")");
  return *v;
}

void read_float_tensor(hid_t g, Pending& p) {
  H5Tensor& t = p.tensor;
  const std::string owner = "tensor " + t.name;
  auto dtype = h5::read_string_attr(g, "dtype", owner);
  QWENQAT_CHECK(dtype.has_value(), owner, " has no attribute dtype (", kReexport, ")");
  hid_t type = H5T_STD_U16LE;
  if (*dtype == "f32") {
    t.data.dtype = models::DType::kF32;
    type = H5T_IEEE_F32LE;
  } else if (*dtype == "f16") {
    t.data.dtype = models::DType::kF16;
  } else if (*dtype == "bf16") {
    t.data.dtype = models::DType::kBF16;
  } else {
    fail(owner, " has dtype '", *dtype, "'; this qwenqat reads f32, f16 and bf16 (", kReexport,
         ")");
  }
  std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
  h5::Id ds = open_dataset(g, "data", type, *dtype == "f32" ? "IEEE f32 LE" : "uint16 LE", dims,
                           "dataset data of " + owner);
  const size_t esize = models::dtype_size(t.data.dtype);
  p.data = contiguous_range(ds, uint64_t(t.numel()) * esize, esize, "dataset data of " + owner);
  t.data.name = t.name;
  t.data.shape = t.shape;
  t.data.nbytes = size_t(p.data.size);
  t.file_bytes = p.data.size;
}

void read_quantized_tensor(hid_t g, Pending& p) {
  H5Tensor& t = p.tensor;
  const std::string owner = "tensor " + t.name;
  PackedView& v = t.packed;
  const int64_t bits = need_int(g, "bits", owner), group = need_int(g, "group_size", owner);
  const int64_t sym = need_int(g, "symmetric", owner);
  QWENQAT_CHECK(
      bits >= 2 && bits <= 8 && group >= 0 && group <= (int64_t(1) << 30) && (sym == 0 || sym == 1),
      owner, ": invalid quantization attributes bits=", bits, " group_size=", group,
      " symmetric=", sym, " (the file is corrupt)");
  v.spec = {int(bits), int(group), sym == 1};
  v.rows = need_int(g, "rows", owner);
  v.cols = need_int(g, "cols", owner);
  v.row_bytes = need_int(g, "row_bytes", owner);
  QWENQAT_CHECK((t.shape == std::vector<int64_t>{v.rows, v.cols}), owner,
                ": attribute shape disagrees with rows/cols (the file is corrupt)");
  v.spec.validate(v.cols, t.name);
  QWENQAT_CHECK(v.row_bytes == packed_row_bytes(v.cols, int(bits)), owner, ": row_bytes ",
                v.row_bytes, " does not match ", bits, "-bit packing of ", v.cols, " columns (",
                packed_row_bytes(v.cols, int(bits)), "; the file is corrupt)");
  auto scheme = h5::read_string_attr(g, "scheme", owner);
  QWENQAT_CHECK(scheme.has_value() && *scheme == v.spec.name(), owner, ": attribute scheme '",
                scheme.value_or("<missing>"), "' disagrees with bits/group_size/symmetric ('",
                v.spec.name(), "'; the file is corrupt)");
  const hsize_t rows = hsize_t(v.rows), groups = hsize_t(v.groups_per_row());
  {
    h5::Id ds = open_dataset(g, "codes", H5T_STD_U8LE, "uint8", {rows, hsize_t(v.row_bytes)},
                             "dataset codes of " + owner);
    p.data = contiguous_range(ds, rows * hsize_t(v.row_bytes), 1, "dataset codes of " + owner);
  }
  {
    h5::Id ds = open_dataset(g, "scales", H5T_STD_U16LE, "uint16 LE", {rows, groups},
                             "dataset scales of " + owner);
    p.scales = contiguous_range(ds, rows * groups * 2, 2, "dataset scales of " + owner);
  }
  const htri_t has_offsets = H5Lexists(g, "offsets", H5P_DEFAULT);
  h5::check(has_offsets < 0 ? -1 : 0, "cannot look up dataset offsets of " + owner +
                                          ": the file is truncated or corrupt (" + kReexport + ")");
  p.has_offsets = has_offsets > 0;
  QWENQAT_CHECK(p.has_offsets == !v.spec.symmetric, owner, ": scheme ", v.spec.name(),
                v.spec.symmetric ? " is symmetric but has an offsets dataset"
                                 : " is asymmetric but has no offsets dataset",
                " (the file is corrupt)");
  if (p.has_offsets) {
    h5::Id ds = open_dataset(g, "offsets", H5T_STD_U16LE, "uint16 LE", {rows, groups},
                             "dataset offsets of " + owner);
    p.offsets = contiguous_range(ds, rows * groups * 2, 2, "dataset offsets of " + owner);
  }
  t.file_bytes = p.data.size + p.scales.size + p.offsets.size;
}

void read_tensor(hid_t tensors, Pending& p) {
  H5Tensor& t = p.tensor;
  const std::string owner = "tensor " + t.name;
  H5O_info_t info{};
  h5::check(H5Oget_info_by_name(tensors, t.name.c_str(), &info, H5P_DEFAULT),
            "cannot read /tensors/" + t.name);
  QWENQAT_CHECK(info.type == H5O_TYPE_GROUP, "/tensors/", t.name, " is not a group (", kReexport,
                ")");
  h5::Id g(H5Gopen2(tensors, t.name.c_str(), H5P_DEFAULT), "cannot open /tensors/" + t.name);
  auto kind = h5::read_string_attr(g, "kind", owner);
  auto shape = h5::read_ints_attr(g, "shape", owner);
  QWENQAT_CHECK(kind.has_value() && shape.has_value(), owner, " lacks attribute kind or shape (",
                kReexport, ")");
  QWENQAT_CHECK(!shape->empty() && shape->size() <= 8, owner, ": shape must have rank 1..8");
  for (int64_t d : *shape) QWENQAT_CHECK(d > 0, owner, ": shape dims must be positive, got ", d);
  t.shape = *shape;
  if (auto bits = h5::read_int_attr(g, "activation_bits", owner)) {
    QWENQAT_CHECK(*bits >= 2 && *bits <= 8 && shape->size() == 2, owner,
                  ": attribute activation_bits is ", *bits, " on a tensor of rank ", shape->size(),
                  "; it must be 2..8 on a 2-D weight (", kReexport, ")");
    t.activation_bits = int(*bits);
  }
  if (*kind == "float") {
    read_float_tensor(g, p);
  } else if (*kind == "quantized") {
    t.quantized = true;
    read_quantized_tensor(g, p);
  } else {
    fail(owner, " has kind '", *kind, "'; this qwenqat reads 'float' and 'quantized' (", kReexport,
         ")");
  }
}

}  // namespace

int64_t H5Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string H5Tensor::scheme() const {
  if (quantized) return packed.spec.name();
  switch (data.dtype) {
    case models::DType::kF16:
      return "f16";
    case models::DType::kBF16:
      return "bf16";
    default:
      return "f32";
  }
}

H5ModelFile::H5ModelFile(const std::filesystem::path& path, MapMode mode) {
  h5::init();
  const std::string name = file_msg(path);
  std::error_code ec;
  QWENQAT_CHECK(std::filesystem::is_regular_file(path, ec), "cannot open model file ", name,
                ": no such file");
  const htri_t is_h5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  QWENQAT_CHECK(is_h5 > 0, name,
                " is not an HDF5 file (a qwenqat model file is written by `qwenqat export "
                "--model CHECKPOINT --out MODEL.h5`)");
  std::vector<Pending> pending;
  {
    h5::Id file(
        H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
        "cannot open " + name + " as an HDF5 file; it is truncated or corrupt (" + kReexport + ")");
    auto format = h5::read_string_attr(file, "format", name);
    QWENQAT_CHECK(format.has_value() && *format == kH5FormatName, name,
                  " is an HDF5 file but not a qwenqat model file (root attribute format is ",
                  format ? "'" + *format + "'" : std::string("missing"),
                  ", expected 'qwenqat'); write one with `qwenqat export --out MODEL.h5`");
    version_major_ = need_int(file, "format_version_major", name);
    version_minor_ = need_int(file, "format_version_minor", name);
    QWENQAT_CHECK(version_major_ <= kH5FormatVersionMajor, name, " uses qwenqat HDF5 format ",
                  version_major_, ".", version_minor_, ", newer than this qwenqat reads (",
                  kH5FormatVersionMajor,
                  ".x): upgrade qwenqat, or re-export the model with this "
                  "version of qwenqat");
    QWENQAT_CHECK(version_major_ >= 1, name, ": invalid format_version_major ", version_major_);
    writer_ = h5::read_string_attr(file, "writer", name).value_or("");
    created_ = h5::read_string_attr(file, "created", name);
    prompt_template_ = h5::read_string_attr(file, "prompt_template", name).value_or("");
    config_text_ = read_text(file, kH5ConfigJson, true, name);
    tokenizer_text_ = read_text(file, kH5TokenizerJson, false, name);
    tokenizer_config_text_ = read_text(file, kH5TokenizerConfigJson, false, name);
    quant_config_text_ = read_text(file, kH5QuantizationConfigJson, false, name);

    const htri_t has_tensors = H5Lexists(file, "tensors", H5P_DEFAULT);
    h5::check(has_tensors < 0 ? -1 : 0,
              "cannot look up /tensors in " + name + ": the file is truncated or corrupt");
    QWENQAT_CHECK(has_tensors > 0, name, " has no /tensors group (", kReexport, ")");
    h5::Id tensors(H5Gopen2(file, "tensors", H5P_DEFAULT), "cannot open /tensors in " + name);
    std::vector<std::string> names;
    h5::check(H5Literate(tensors, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names),
              "cannot list /tensors in " + name);
    pending.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      pending[i].tensor.name = names[i];
      try {
        read_tensor(tensors, pending[i]);
      } catch (const Error& e) {
        fail(name, ": ", e.what());
      }
    }
  }
  map_ = MappedFile(path, mode);
  const uint8_t* base = map_.data();
  auto locate = [&](const Range& r, const std::string& tensor) -> const uint8_t* {
    QWENQAT_CHECK(r.offset <= map_.size() && r.size <= map_.size() - r.offset, name, ": ", r.what,
                  " lies at bytes [", r.offset, ", ", r.offset + r.size, ") but the file has ",
                  map_.size(), " bytes: the file is truncated (tensor ", tensor, "); ", kReexport);
    const uint8_t* p = base + r.offset;
    QWENQAT_CHECK(reinterpret_cast<uintptr_t>(p) % r.align == 0, name, ": ", r.what,
                  " is not aligned to ", r.align, " bytes (not written by qwenqat?); ", kReexport);
    return p;
  };
  tensors_.reserve(pending.size());
  for (auto& p : pending) {
    H5Tensor& t = p.tensor;
    if (t.quantized) {
      t.packed.data = locate(p.data, t.name);
      t.packed.scales = reinterpret_cast<const uint16_t*>(locate(p.scales, t.name));
      if (p.has_offsets) {
        t.packed.offsets = reinterpret_cast<const uint16_t*>(locate(p.offsets, t.name));
      }
    } else {
      t.data.data = locate(p.data, t.name);
    }
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
}

models::Qwen2Config H5ModelFile::config() const {
  return models::Qwen2Config::from_json(parse_json(config_text_, path().string() + ":config.json"),
                                        path().string() + ":config.json");
}

Json H5ModelFile::quantization_config() const {
  if (quant_config_text_.empty()) return Json();
  return parse_json(quant_config_text_, path().string() + ":quantization_config.json");
}

const H5Tensor* H5ModelFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const H5Tensor& H5ModelFile::get(const std::string& name) const {
  const H5Tensor* t = find(name);
  QWENQAT_CHECK(t != nullptr, "tensor ", name, " is not in ", path().string());
  return *t;
}

quant::QuantizedMatrix H5ModelFile::quantized_matrix(const std::string& name) const {
  const H5Tensor& t = get(name);
  QWENQAT_CHECK(t.quantized, "tensor ", name, " in ", path().string(), " is a float tensor (",
                t.scheme(), "), not a quantized one");
  return unpack(t.packed, "tensor " + name + " of " + path().string());
}

std::vector<float> H5ModelFile::to_f32(const std::string& name) const {
  const H5Tensor& t = get(name);
  std::vector<float> out(size_t(t.numel()));
  if (!t.quantized) {
    models::convert_to_f32(t.data, out.data());
  } else {
    for (int64_t r = 0; r < t.packed.rows; ++r) {
      dequantize_row(t.packed, r, out.data() + r * t.packed.cols);
    }
  }
  return out;
}

}  // namespace qwenqat::format
