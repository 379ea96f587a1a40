// Implementation of h5_util.h: HDF5 id ownership, error-stack messages and the
// typed attribute / dataset helpers of the qwenqat HDF5 model file.
#include "export/format/h5_util.h"

#include <cstdlib>

#include "data/util/check.h"

namespace qwenqat::format::h5 {

void init() {
  static const bool kDone = [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)kDone;
}

namespace {

herr_t collect_error(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  std::string desc = err->desc != nullptr ? err->desc : "";
  if (desc.empty() && err->func_name != nullptr) desc = std::string("error in ") + err->func_name;
  if (!desc.empty() && (out->empty() || out->back() != desc)) out->push_back(desc);
  return 0;
}

}  // namespace

std::string error_stack() {
  std::vector<std::string> parts;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &parts);
  H5Eclear2(H5E_DEFAULT);
  // The outermost entry says what failed, the innermost two why; the middle
  // of a deep stack is HDF5's internal call chain.
  if (parts.size() > 3) parts.erase(parts.begin() + 1, parts.end() - 2);
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "; ") + p;
  return s;
}

void check(herr_t status, const std::string& what) {
  if (status < 0) {
    const std::string stack = error_stack();
    // "addr overflow": HDF5 tried to read past the end of the file.
    const bool past_end = stack.find("addr overflow") != std::string::npos &&
                          what.find("truncated") == std::string::npos;
    fail(what, past_end ? ": the file is truncated or corrupt" : "",
         stack.empty() ? "" : " (HDF5: " + stack + ")");
  }
}

hid_t check_id(hid_t id, const std::string& what) {
  check(id < 0 ? -1 : 0, what);
  return id;
}

Id::Id(hid_t id, const std::string& what) : id_(check_id(id, what)) {}

Id& Id::operator=(Id&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    o.id_ = -1;
  }
  return *this;
}

bool Id::close() {
  if (id_ < 0) return true;
  herr_t rc = -1;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      rc = H5Fclose(id_);
      break;
    case H5I_GROUP:
      rc = H5Gclose(id_);
      break;
    case H5I_DATASET:
      rc = H5Dclose(id_);
      break;
    case H5I_ATTR:
      rc = H5Aclose(id_);
      break;
    case H5I_DATASPACE:
      rc = H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      rc = H5Tclose(id_);
      break;
    case H5I_GENPROP_LST:
      rc = H5Pclose(id_);
      break;
    default:
      rc = H5Idec_ref(id_);
      break;
  }
  id_ = -1;
  return rc >= 0;
}

Id contiguous_dcpl() {
  Id p(H5Pcreate(H5P_DATASET_CREATE), "cannot create an HDF5 dataset property list");
  check(H5Pset_layout(p, H5D_CONTIGUOUS), "H5Pset_layout");
  check(H5Pset_alloc_time(p, H5D_ALLOC_TIME_EARLY), "H5Pset_alloc_time");
  check(H5Pset_fill_time(p, H5D_FILL_TIME_NEVER), "H5Pset_fill_time");
  check(H5Pset_obj_track_times(p, false), "H5Pset_obj_track_times");
  return p;
}

Id untimed_gcpl() {
  Id p(H5Pcreate(H5P_GROUP_CREATE), "cannot create an HDF5 group property list");
  check(H5Pset_obj_track_times(p, false), "H5Pset_obj_track_times");
  return p;
}

namespace {

void write_attr(hid_t obj, const char* name, hid_t type, hid_t space, const void* data,
                const std::string& owner) {
  const std::string what = std::string("cannot write attribute ") + name + " of " + owner;
  Id attr(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), what);
  check(H5Awrite(attr, type, data), what);
}

// Opens attribute `name` of `obj`, or returns an empty Id when it is absent.
Id open_attr(hid_t obj, const char* name, const std::string& owner) {
  const htri_t exists = H5Aexists(obj, name);
  check(exists < 0 ? -1 : 0, std::string("cannot look up attribute ") + name + " of " + owner);
  if (exists == 0) return {};
  return Id(H5Aopen(obj, name, H5P_DEFAULT),
            std::string("cannot open attribute ") + name + " of " + owner);
}

hssize_t attr_points(hid_t attr, const std::string& what) {
  Id space(H5Aget_space(attr), what);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  QWENQAT_CHECK(n >= 0, what, ": unreadable dataspace");
  return n;
}

}  // namespace

void write_int_attr(hid_t obj, const char* name, int64_t v, const std::string& owner) {
  Id space(H5Screate(H5S_SCALAR), "H5Screate");
  write_attr(obj, name, H5T_STD_I64LE, space, &v, owner);
}

void write_ints_attr(hid_t obj, const char* name, const std::vector<int64_t>& v,
                     const std::string& owner) {
  const hsize_t n = v.size();
  Id space(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
  write_attr(obj, name, H5T_STD_I64LE, space, v.data(), owner);
}

void write_string_attr(hid_t obj, const char* name, const std::string& v,
                       const std::string& owner) {
  Id type(H5Tcopy(H5T_C_S1), "H5Tcopy");
  check(H5Tset_size(type, v.size() + 1), "H5Tset_size");
  check(H5Tset_strpad(type, H5T_STR_NULLTERM), "H5Tset_strpad");
  check(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset");
  Id space(H5Screate(H5S_SCALAR), "H5Screate");
  write_attr(obj, name, type, space, v.c_str(), owner);
}

bool has_attr(hid_t obj, const char* name) { return H5Aexists(obj, name) > 0; }

std::optional<int64_t> read_int_attr(hid_t obj, const char* name, const std::string& owner) {
  auto v = read_ints_attr(obj, name, owner);
  if (!v) return std::nullopt;
  QWENQAT_CHECK(v->size() == 1, "attribute ", name, " of ", owner, " must be one integer, not ",
                v->size(), " values (the file is corrupt or not written by qwenqat)");
  return (*v)[0];
}

std::optional<std::vector<int64_t>> read_ints_attr(hid_t obj, const char* name,
                                                   const std::string& owner) {
  Id attr = open_attr(obj, name, owner);
  if (attr.get() < 0) return std::nullopt;
  const std::string what = std::string("attribute ") + name + " of " + owner;
  Id type(H5Aget_type(attr), what);
  QWENQAT_CHECK(H5Tget_class(type) == H5T_INTEGER, what,
                " must be an integer (the file is corrupt or not written by qwenqat)");
  std::vector<int64_t> v(size_t(attr_points(attr, what)));
  if (!v.empty()) check(H5Aread(attr, H5T_NATIVE_INT64, v.data()), "cannot read " + what);
  return v;
}

std::optional<std::string> read_string_attr(hid_t obj, const char* name, const std::string& owner) {
  Id attr = open_attr(obj, name, owner);
  if (attr.get() < 0) return std::nullopt;
  const std::string what = std::string("attribute ") + name + " of " + owner;
  Id type(H5Aget_type(attr), what);
  QWENQAT_CHECK(H5Tget_class(type) == H5T_STRING && attr_points(attr, what) == 1, what,
                " must be one string (the file is corrupt or not written by qwenqat)");
  if (H5Tis_variable_str(type) > 0) {
    Id mem(H5Tcopy(H5T_C_S1), "H5Tcopy");
    check(H5Tset_size(mem, H5T_VARIABLE), "H5Tset_size");
    char* p = nullptr;
    check(H5Aread(attr, mem, &p), "cannot read " + what);
    std::string s = p != nullptr ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t size = H5Tget_size(type);
  std::string buf(size + 1, '\0');
  Id mem(H5Tcopy(type), "H5Tcopy");
  check(H5Aread(attr, mem, buf.data()), "cannot read " + what);
  buf.resize(buf.find('\0'));
  return buf;
}

void write_dataset(hid_t loc, const char* name, hid_t file_type, const std::vector<hsize_t>& dims,
                   const void* data, const std::string& owner) {
  const std::string what = std::string("cannot write dataset ") + name + " of " + owner;
  Id space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), what);
  Id dcpl = contiguous_dcpl();
  Id ds(H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), what);
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  if (n > 0) check(H5Dwrite(ds, file_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), what);
  QWENQAT_CHECK(ds.close(), what, " (closing the dataset failed: disk full?)");
}

std::vector<hsize_t> dataset_dims(hid_t dataset, const std::string& owner) {
  Id space(H5Dget_space(dataset), "cannot read the dataspace of " + owner);
  QWENQAT_CHECK(H5Sget_simple_extent_type(space) == H5S_SIMPLE, owner,
                " must have a simple (array) dataspace (the file is corrupt or not written by "
                "qwenqat)");
  const int rank = H5Sget_simple_extent_ndims(space);
  QWENQAT_CHECK(rank >= 0, "cannot read the rank of ", owner);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  check(H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0 ? -1 : 0,
        "cannot read the dims of " + owner);
  return dims;
}

}  // namespace qwenqat::format::h5
