// Implementation of h5_model_writer.h (HDF5 C API).
#include "export/format/h5_model_writer.h"

#include <ctime>
#include <utility>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/half.h"
#include "data/util/json_io.h"

namespace qwenqat::format {

namespace {

const char* float_dtype_attr(models::DType d) {
  switch (d) {
    case models::DType::kF32:
      return "f32";
    case models::DType::kF16:
      return "f16";
    case models::DType::kBF16:
      return "bf16";
    default:
      return nullptr;
  }
}

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<hsize_t> to_hsize(const std::vector<int64_t>& v) {
  return std::vector<hsize_t>(v.begin(), v.end());
}

}  // namespace

H5ModelWriter::H5ModelWriter(std::filesystem::path path, H5WriterOptions options)
    : path_(std::move(path)), temp_(temp_path_for(path_)) {
  h5::init();
  try {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);  // a leftover of a killed run with our pid
    h5::Id fcpl(H5Pcreate(H5P_FILE_CREATE), "H5Pcreate(file create)");
    h5::check(H5Pset_obj_track_times(fcpl, false), "H5Pset_obj_track_times(file)");
    h5::Id fapl(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(file access)");
    h5::check(H5Pset_alignment(fapl, 1, hsize_t(kH5Alignment)), "H5Pset_alignment");
    h5::check(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), "H5Pset_fclose_degree");
    file_ = h5::Id(H5Fcreate(temp_.c_str(), H5F_ACC_TRUNC, fcpl, fapl),
                   "cannot create " + path_.string() + " (as temp file " + temp_.string() +
                       "; is the directory there and writable?)");
    const std::string root = path_.string();
    h5::write_string_attr(file_, "format", kH5FormatName, root);
    h5::write_int_attr(file_, "format_version_major", kH5FormatVersionMajor, root);
    h5::write_int_attr(file_, "format_version_minor", kH5FormatVersionMinor, root);
    h5::write_string_attr(file_, "writer", kH5WriterName, root);
    if (options.write_created_timestamp) {
      h5::write_string_attr(file_, "created", utc_timestamp(), root);
    }
    h5::Id gcpl = h5::untimed_gcpl();
    tensors_ = h5::Id(H5Gcreate2(file_, "tensors", H5P_DEFAULT, gcpl, H5P_DEFAULT),
                      "cannot create group /tensors in " + root);
  } catch (...) {
    discard();
    throw;
  }
}

H5ModelWriter::~H5ModelWriter() {
  if (!committed_) discard();
}

void H5ModelWriter::discard() noexcept {
  tensors_.close();
  file_.close();
  H5Eclear2(H5E_DEFAULT);
  std::error_code ec;
  std::filesystem::remove(temp_, ec);
}

void H5ModelWriter::set_text(const char* member, std::string_view text, bool json) {
  QWENQAT_CHECK(!committed_, "cannot add ", member, " to ", path_.string(), ": already committed");
  QWENQAT_CHECK(texts_.count(member) == 0, member, " was set twice for ", path_.string());
  if (json)
    (void)parse_json(text, std::string(member) + " (to be stored in " + path_.string() + ")");
  texts_.insert(member);
  h5::write_dataset(file_, member, H5T_STD_U8LE, {hsize_t(text.size())}, text.data(),
                    path_.string());
}

void H5ModelWriter::set_config_json(std::string_view text) { set_text(kH5ConfigJson, text, true); }
void H5ModelWriter::set_tokenizer_json(std::string_view text) {
  set_text(kH5TokenizerJson, text, true);
}
void H5ModelWriter::set_tokenizer_config_json(std::string_view text) {
  set_text(kH5TokenizerConfigJson, text, true);
}
void H5ModelWriter::set_quantization_config_json(std::string_view text) {
  set_text(kH5QuantizationConfigJson, text, true);
}

void H5ModelWriter::set_prompt_template(const std::string& name) {
  QWENQAT_CHECK(!has_template_, "prompt_template was set twice for ", path_.string());
  QWENQAT_CHECK(name.find('\0') == std::string::npos, "prompt template name contains a NUL byte");
  h5::write_string_attr(file_, "prompt_template", name, path_.string());
  has_template_ = true;
}

h5::Id H5ModelWriter::create_tensor_group(const std::string& name, const char* kind) {
  QWENQAT_CHECK(!committed_, "cannot add tensor ", name, " to ", path_.string(),
                ": already committed");
  QWENQAT_CHECK(!name.empty() && name.find('/') == std::string::npos &&
                    name.find('\0') == std::string::npos && name != "." && name != "..",
                "tensor name '", name,
                "' cannot be stored in an HDF5 file (empty or contains '/')");
  QWENQAT_CHECK(names_.insert(name).second, "tensor ", name, " was added twice to ",
                path_.string());
  h5::Id gcpl = h5::untimed_gcpl();
  h5::Id g(H5Gcreate2(tensors_, name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT),
           "cannot create group /tensors/" + name + " in " + path_.string());
  h5::write_string_attr(g, "kind", kind, "tensor " + name);
  return g;
}

void H5ModelWriter::add_float_tensor(const std::string& name, models::DType dtype,
                                     const std::vector<int64_t>& shape,
                                     std::span<const uint8_t> bytes) {
  const char* dt = float_dtype_attr(dtype);
  QWENQAT_CHECK(dt != nullptr, "tensor ", name, ": dtype ", models::dtype_name(dtype),
                " cannot be stored as a float tensor (use F32, F16 or BF16)");
  QWENQAT_CHECK(!shape.empty(), "tensor ", name, ": a float tensor needs a shape of rank >= 1");
  size_t numel = 1;
  for (int64_t d : shape) {
    QWENQAT_CHECK(d > 0, "tensor ", name, ": shape dims must be positive, got ", d);
    numel *= size_t(d);
  }
  QWENQAT_CHECK(bytes.size() == numel * models::dtype_size(dtype), "tensor ", name, ": ",
                bytes.size(), " bytes given for ", numel, " elements of ",
                models::dtype_name(dtype));
  h5::Id g = create_tensor_group(name, "float");
  const std::string owner = "tensor " + name;
  h5::write_string_attr(g, "dtype", dt, owner);
  h5::write_ints_attr(g, "shape", shape, owner);
  const hid_t type = dtype == models::DType::kF32 ? H5T_IEEE_F32LE : H5T_STD_U16LE;
  h5::write_dataset(g, "data", type, to_hsize(shape), bytes.data(), owner);
}

void H5ModelWriter::add_float_tensor_f32(const std::string& name, models::DType dtype,
                                         const std::vector<int64_t>& shape,
                                         std::span<const float> values) {
  if (dtype == models::DType::kF32) {
    add_float_tensor(name, dtype, shape,
                     {reinterpret_cast<const uint8_t*>(values.data()), values.size_bytes()});
    return;
  }
  QWENQAT_CHECK(dtype == models::DType::kF16 || dtype == models::DType::kBF16, "tensor ", name,
                ": dtype ", models::dtype_name(dtype),
                " cannot be stored as a float tensor (use F32, F16 or BF16)");
  std::vector<uint16_t> half(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    half[i] = dtype == models::DType::kF16 ? f32_to_fp16(values[i]) : f32_to_bf16(values[i]);
  }
  add_float_tensor(name, dtype, shape,
                   {reinterpret_cast<const uint8_t*>(half.data()), half.size() * 2});
}

void H5ModelWriter::add_packed_tensor(const std::string& name, const PackedView& p) {
  validate_view(p, "tensor " + name);
  QWENQAT_CHECK((p.offsets != nullptr) == !p.spec.symmetric, "tensor ", name, ": scheme ",
                p.spec.name(),
                (p.spec.symmetric ? " is symmetric but offsets were given"
                                  : " is asymmetric but has no offsets"));
  h5::Id g = create_tensor_group(name, "quantized");
  const std::string owner = "tensor " + name;
  h5::write_string_attr(g, "scheme", p.spec.name(), owner);
  h5::write_int_attr(g, "bits", p.spec.bits, owner);
  h5::write_int_attr(g, "group_size", p.spec.group_size, owner);
  h5::write_int_attr(g, "symmetric", p.spec.symmetric ? 1 : 0, owner);
  h5::write_int_attr(g, "rows", p.rows, owner);
  h5::write_int_attr(g, "cols", p.cols, owner);
  h5::write_int_attr(g, "row_bytes", p.row_bytes, owner);
  h5::write_ints_attr(g, "shape", {p.rows, p.cols}, owner);
  const hsize_t rows = hsize_t(p.rows), groups = hsize_t(p.groups_per_row());
  h5::write_dataset(g, "codes", H5T_STD_U8LE, {rows, hsize_t(p.row_bytes)}, p.data, owner);
  h5::write_dataset(g, "scales", H5T_STD_U16LE, {rows, groups}, p.scales, owner);
  if (!p.spec.symmetric) {
    h5::write_dataset(g, "offsets", H5T_STD_U16LE, {rows, groups}, p.offsets, owner);
  }
}

void H5ModelWriter::set_activation_bits(const std::string& name, int bits) {
  QWENQAT_CHECK(names_.count(name) == 1, "tensor ", name,
                ": set_activation_bits before the tensor was added to ", path_.string());
  QWENQAT_CHECK(bits >= 2 && bits <= 8, "tensor ", name, ": activation bits must be 2..8, got ",
                bits);
  h5::Id g(H5Gopen2(tensors_, name.c_str(), H5P_DEFAULT),
           "cannot open group /tensors/" + name + " in " + path_.string());
  h5::write_int_attr(g, "activation_bits", bits, "tensor " + name);
}

void H5ModelWriter::commit() {
  QWENQAT_CHECK(!committed_, path_.string(), " was already committed");
  try {
    QWENQAT_CHECK(texts_.count(kH5ConfigJson) == 1, "cannot finish ", path_.string(),
                  ": no config.json was stored (the model file needs one)");
    QWENQAT_CHECK(tensors_.close(), "cannot close /tensors in ", path_.string(),
                  " (HDF5: ", h5::error_stack(), ")");
    QWENQAT_CHECK(file_.close(), "cannot finish writing ", path_.string(),
                  " (disk full? HDF5: ", h5::error_stack(), ")");
    commit_temp_file(temp_, path_);
  } catch (...) {
    discard();
    throw;
  }
  committed_ = true;
}

}  // namespace qwenqat::format
