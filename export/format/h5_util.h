// Internal helpers for the qwenqat HDF5 model file (h5_model_writer / h5_model_reader /
// h5_inspect): RAII ownership of HDF5 ids, HDF5's error stack turned into
// qwenqat::Error messages, and typed attribute / dataset helpers. Uses the HDF5 C
// API (1.10). Not a public API: only the h5_* files of export/format include it.
//
// Thread safety: the Debian HDF5 build is not thread-safe; every function here
// must be called from one thread at a time (the reader and writer document this).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qwenqat::format::h5 {

// Silences HDF5's automatic error printing (we build our own messages).
// Idempotent; called by every constructor that touches HDF5.
void init();

// The current HDF5 error stack as one line: the outermost entry and the two
// innermost ones ("desc; desc; desc"), then cleared. Empty when the stack is empty.
std::string error_stack();

// Throws qwenqat::Error with `what` + ": " + error_stack() when `status` < 0.
void check(herr_t status, const std::string& what);
// Throws the same way when `id` < 0; returns `id` otherwise.
hid_t check_id(hid_t id, const std::string& what);

// Owns one HDF5 identifier and closes it with the matching H5?close. Move-only.
class Id {
 public:
  Id() = default;
  // Takes ownership of a valid id (>= 0); `what` names it in error messages
  // when `id` is invalid (the constructor then throws with HDF5's error stack).
  Id(hid_t id, const std::string& what);
  ~Id() { reset(); }
  Id(Id&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Id& operator=(Id&& o) noexcept;
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  // Closes now; returns false if HDF5 reported an error while closing (for
  // files, that means buffered data may not have reached the disk).
  bool close();

 private:
  void reset() { (void)close(); }
  hid_t id_ = -1;
};

// Dataset / group creation property lists with the format's fixed settings:
// contiguous layout, early allocation, no fill, no object timestamps.
Id contiguous_dcpl();
Id untimed_gcpl();

// Attribute writers (scalar int64 LE, 1-D int64 LE array, fixed-length UTF-8
// null-terminated string). Throw naming `owner` and the attribute.
void write_int_attr(hid_t obj, const char* name, int64_t v, const std::string& owner);
void write_ints_attr(hid_t obj, const char* name, const std::vector<int64_t>& v,
                     const std::string& owner);
void write_string_attr(hid_t obj, const char* name, const std::string& v, const std::string& owner);

bool has_attr(hid_t obj, const char* name);
// Attribute readers: nullopt when the attribute is absent; throw naming `owner`
// when present with the wrong type or shape. Integers accept any integer type;
// strings accept fixed-length and variable-length strings.
std::optional<int64_t> read_int_attr(hid_t obj, const char* name, const std::string& owner);
std::optional<std::vector<int64_t>> read_ints_attr(hid_t obj, const char* name,
                                                   const std::string& owner);
std::optional<std::string> read_string_attr(hid_t obj, const char* name, const std::string& owner);

// Creates a contiguous dataset `name` under `loc` with file type `file_type`
// and dims `dims`, and writes `data` (same element type in memory) into it.
// `data` may be null only when the dataset has no elements.
void write_dataset(hid_t loc, const char* name, hid_t file_type, const std::vector<hsize_t>& dims,
                   const void* data, const std::string& owner);

// The dims of a dataset's simple dataspace (throws naming `owner` if not simple).
std::vector<hsize_t> dataset_dims(hid_t dataset, const std::string& owner);

}  // namespace qwenqat::format::h5
