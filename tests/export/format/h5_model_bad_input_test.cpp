// Bad-input tests of the qwenqat HDF5 model file: truncated, foreign, newer,
// non-HDF5 and structurally wrong files are rejected by H5ModelFile with clear
// qwenqat::Error messages; bad writer calls and unwritable outputs throw and
// leave no partial file behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "export/format/h5_model_reader.h"
#include "export/format/h5_util.h"
#include "tests/export/format/h5_test_model.h"
#include "tests/util/test_util.h"

namespace qwenqat::format {
namespace {

using testing::TempDir;

// The message of the qwenqat::Error that opening `path` throws ("" if none).
std::string open_error(const std::filesystem::path& path) {
  try {
    H5ModelFile f(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// Writes the tiny model to `path`, then edits it with the raw HDF5 API.
void write_and_edit(const std::filesystem::path& path, const std::function<void(hid_t)>& edit) {
  testing::write_tiny_model(testing::make_tiny_model(), path);
  h5::init();
  h5::Id file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open for edit");
  edit(file);
}

std::vector<std::string> dir_entries(const std::filesystem::path& dir) {
  std::vector<std::string> v;
  for (const auto& e : std::filesystem::directory_iterator(dir)) v.push_back(e.path().filename());
  return v;
}

TEST(H5ModelBadInput, MissingAndNonHdf5Files) {
  TempDir dir;
  EXPECT_NE(open_error(dir / "absent.h5").find("no such file"), std::string::npos);
  write_bytes(dir / "text.h5", "this is not an HDF5 file\n");
  const std::string msg = open_error(dir / "text.h5");
  EXPECT_NE(msg.find("is not an HDF5 file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("text.h5"), std::string::npos) << msg;
  write_bytes(dir / "empty.h5", "");
  EXPECT_NE(open_error(dir / "empty.h5").find("is not an HDF5 file"), std::string::npos);
}

TEST(H5ModelBadInput, TruncatedFilesAreRejectedAtEverySize) {
  TempDir dir;
  testing::write_tiny_model(testing::make_tiny_model(), dir / "m.h5");
  const std::string full = read_file(dir / "m.h5");
  for (size_t size : {full.size() - 1, full.size() * 3 / 4, full.size() / 2, size_t(4096),
                      size_t(700), size_t(64), size_t(8)}) {
    SCOPED_TRACE(size);
    write_bytes(dir / "t.h5", full.substr(0, size));
    const std::string msg = open_error(dir / "t.h5");
    ASSERT_FALSE(msg.empty()) << "a truncated file was accepted";
    EXPECT_NE(msg.find("t.h5"), std::string::npos) << msg;
  }
  write_bytes(dir / "t.h5", full.substr(0, full.size() / 2));
  const std::string msg = open_error(dir / "t.h5");
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(H5ModelBadInput, TensorBytesBeyondEndOfFileNameTheTensor) {
  // A dataset whose recorded address puts its bytes past the end of the file:
  // the error must name the tensor.
  TempDir dir;
  {
    H5ModelWriter w(dir / "m.h5");
    w.set_config_json(testing::kTinyConfig);
    w.add_float_tensor_f32("model.norm.weight", models::DType::kF32, {64},
                           testing::random_floats(64, 1));
    w.add_float_tensor_f32("lm_head.weight", models::DType::kF32, {64, 256},
                           testing::random_floats(64 * 256, 2));
    w.commit();
  }
  std::string full = read_file(dir / "m.h5");
  ASSERT_EQ(full.compare(0, 8, "\x89HDF\r\n\x1a\n"), 0);
  ASSERT_EQ(full[8], 0) << "expected a version-0 superblock";
  uint64_t start = 0;
  {
    const H5ModelFile f(dir / "m.h5");
    start = uint64_t(f.get("lm_head.weight").data.data - f.mapped().data());
  }
  // The dataset's layout message (version 3, class contiguous, address, size):
  // move its address near the end of the file, so the data would run past it.
  std::string layout("\x03\x01", 2);
  const uint64_t size = 64 * 256 * 4;
  layout.append(reinterpret_cast<const char*>(&start), 8);
  layout.append(reinterpret_cast<const char*>(&size), 8);
  const size_t at = full.find(layout);
  ASSERT_NE(at, std::string::npos) << "layout message not found";
  ASSERT_EQ(full.find(layout, at + 1), std::string::npos);
  const uint64_t moved = full.size() - 1000;
  std::memcpy(full.data() + at + 2, &moved, 8);
  write_bytes(dir / "t.h5", full);
  const std::string msg = open_error(dir / "t.h5");
  EXPECT_NE(msg.find("tensor lm_head.weight"), std::string::npos) << msg;
  // A cut whose superblock end-of-file field is patched to match, so HDF5
  // opens it: later lookups fail and are reported as truncation.
  testing::write_tiny_model(testing::make_tiny_model(), dir / "m2.h5");
  full = read_file(dir / "m2.h5");
  const uint64_t cut2 = full.size() * 3 / 4;
  std::string cut_file = full.substr(0, cut2);
  std::memcpy(cut_file.data() + 40, &cut2, 8);
  write_bytes(dir / "t2.h5", cut_file);
  const std::string msg2 = open_error(dir / "t2.h5");
  EXPECT_NE(msg2.find("truncated"), std::string::npos) << msg2;
}

TEST(H5ModelBadInput, ForeignHdf5FileIsNotAModel) {
  TempDir dir;
  h5::init();
  {
    h5::Id f(H5Fcreate((dir / "foreign.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
             "create");
    const int32_t v[3] = {1, 2, 3};
    h5::write_dataset(f, "x", H5T_STD_I32LE, {3}, v, "test");
  }
  std::string msg = open_error(dir / "foreign.h5");
  EXPECT_NE(msg.find("not a qwenqat model file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  {
    h5::Id f(H5Fcreate((dir / "other.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
             "create");
    h5::write_string_attr(f, "format", "netcdf", "test");
  }
  msg = open_error(dir / "other.h5");
  EXPECT_NE(msg.find("not a qwenqat model file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'netcdf'"), std::string::npos) << msg;
}

TEST(H5ModelBadInput, NewerMajorVersionAsksToUpgrade) {
  TempDir dir;
  write_and_edit(dir / "m.h5", [](hid_t f) {
    H5Adelete(f, "format_version_major");
    h5::write_int_attr(f, "format_version_major", 2, "test");
  });
  const std::string msg = open_error(dir / "m.h5");
  EXPECT_NE(msg.find("format 2." + std::to_string(kH5FormatVersionMinor)), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("upgrade qwenqat"), std::string::npos) << msg;
}

TEST(H5ModelBadInput, NewerMinorVersionIsAccepted) {
  TempDir dir;
  write_and_edit(dir / "m.h5", [](hid_t f) {
    H5Adelete(f, "format_version_minor");
    h5::write_int_attr(f, "format_version_minor", 7, "test");
  });
  const H5ModelFile f(dir / "m.h5");
  EXPECT_EQ(f.format_version_minor(), 7);
}

TEST(H5ModelBadInput, ChunkedDatasetIsRejected) {
  TempDir dir;
  write_and_edit(dir / "m.h5", [](hid_t f) {
    h5::Id g(H5Gcreate2(f, "tensors/chunky", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group");
    h5::write_string_attr(g, "kind", "float", "test");
    h5::write_string_attr(g, "dtype", "f32", "test");
    h5::write_ints_attr(g, "shape", {8}, "test");
    h5::Id dcpl(H5Pcreate(H5P_DATASET_CREATE), "dcpl");
    const hsize_t chunk = 4, dims = 8;
    H5Pset_chunk(dcpl, 1, &chunk);
    h5::Id space(H5Screate_simple(1, &dims, nullptr), "space");
    h5::Id ds(H5Dcreate2(g, "data", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "ds");
    const float v[8] = {};
    h5::check(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), "write");
  });
  const std::string msg = open_error(dir / "m.h5");
  EXPECT_NE(msg.find("tensor chunky"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not stored contiguously"), std::string::npos) << msg;
}

TEST(H5ModelBadInput, InconsistentTensorAttributesAreRejected) {
  TempDir dir;
  const std::string q = "tensors/model.layers.0.self_attn.q_proj.weight";
  struct Case {
    const char* expect;
    std::function<void(hid_t)> edit;
  };
  const std::vector<Case> cases = {
      {"row_bytes",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, q.c_str(), H5P_DEFAULT), "g");
         H5Adelete(g, "row_bytes");
         h5::write_int_attr(g, "row_bytes", 31, "test");
       }},
      {"scheme",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, q.c_str(), H5P_DEFAULT), "g");
         H5Adelete(g, "scheme");
         h5::write_string_attr(g, "scheme", "w8g32", "test");
       }},
      {"dataset scales of tensor",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, q.c_str(), H5P_DEFAULT), "g");
         H5Ldelete(g, "scales", H5P_DEFAULT);
       }},
      {"group size 48",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, q.c_str(), H5P_DEFAULT), "g");
         H5Adelete(g, "group_size");
         h5::write_int_attr(g, "group_size", 48, "test");
       }},
      {"has shape",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, "tensors/model.norm.weight", H5P_DEFAULT), "g");
         H5Adelete(g, "shape");
         h5::write_ints_attr(g, "shape", {65}, "test");
       }},
      {"dtype 'f8'",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, "tensors/model.norm.weight", H5P_DEFAULT), "g");
         H5Adelete(g, "dtype");
         h5::write_string_attr(g, "dtype", "f8", "test");
       }},
      {"activation_bits is 9",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, q.c_str(), H5P_DEFAULT), "g");
         h5::write_int_attr(g, "activation_bits", 9, "test");
       }},
      {"activation_bits is 8 on a tensor of rank 1",
       [&](hid_t f) {
         h5::Id g(H5Gopen2(f, "tensors/model.norm.weight", H5P_DEFAULT), "g");
         h5::write_int_attr(g, "activation_bits", 8, "test");
       }},
      {"no config.json", [&](hid_t f) { H5Ldelete(f, "config.json", H5P_DEFAULT); }},
      {"is not a group",
       [&](hid_t f) {
         const uint8_t b = 1;
         h5::Id g(H5Gopen2(f, "tensors", H5P_DEFAULT), "g");
         h5::write_dataset(g, "stray", H5T_STD_U8LE, {1}, &b, "test");
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expect);
    std::filesystem::remove(dir / "m.h5");
    write_and_edit(dir / "m.h5", c.edit);
    const std::string msg = open_error(dir / "m.h5");
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
  }
}

TEST(H5ModelBadInput, UnwritableOutputLeavesNothingBehind) {
  TempDir dir;
  EXPECT_THROW(H5ModelWriter(dir / "no_such_dir" / "m.h5"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "no_such_dir"));
  // The output path is an existing non-empty directory: the rename fails at commit.
  std::filesystem::create_directories(dir / "taken" / "x");
  {
    H5ModelWriter w(dir / "taken");
    w.set_config_json(testing::kTinyConfig);
    w.add_float_tensor_f32("a", models::DType::kF32, {2}, std::vector<float>{1, 2});
    EXPECT_THROW(w.commit(), Error);
  }
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"taken"});
  EXPECT_TRUE(std::filesystem::is_directory(dir / "taken" / "x"));
  if (::geteuid() != 0) {  // root ignores permissions
    std::filesystem::create_directories(dir / "ro");
    std::filesystem::permissions(
        dir / "ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    EXPECT_THROW(H5ModelWriter(dir / "ro" / "m.h5"), Error);
    EXPECT_TRUE(dir_entries(dir / "ro").empty());
  }
}

TEST(H5ModelBadInput, WriterWithoutCommitOrConfigLeavesNothing) {
  TempDir dir;
  {
    H5ModelWriter w(dir / "m.h5");
    w.set_config_json(testing::kTinyConfig);
    EXPECT_FALSE(dir_entries(dir.path()).empty());  // the temp file exists meanwhile
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());
  {
    H5ModelWriter w(dir / "m.h5");
    try {
      w.commit();
      ADD_FAILURE() << "commit without config.json succeeded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());
}

TEST(H5ModelBadInput, BadWriterCallsThrow) {
  TempDir dir;
  H5ModelWriter w(dir / "m.h5");
  EXPECT_THROW(w.set_config_json("{not json"), Error);
  w.set_config_json(testing::kTinyConfig);
  EXPECT_THROW(w.set_config_json(testing::kTinyConfig), Error);  // twice
  const std::vector<float> v(6, 1.0f);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(v.data()), 24);
  EXPECT_THROW(w.add_float_tensor("a", models::DType::kF32, {5}, bytes), Error);  // size
  EXPECT_THROW(w.add_float_tensor("a", models::DType::kI32, {6}, bytes), Error);  // dtype
  EXPECT_THROW(w.add_float_tensor("a", models::DType::kF32, {0, 6}, bytes), Error);
  EXPECT_THROW(w.add_float_tensor("a/b", models::DType::kF32, {6}, bytes), Error);
  EXPECT_THROW(w.add_float_tensor("", models::DType::kF32, {6}, bytes), Error);
  w.add_float_tensor("a", models::DType::kF32, {6}, bytes);
  EXPECT_THROW(w.add_float_tensor("a", models::DType::kF32, {6}, bytes), Error);  // duplicate
  const auto wts = testing::random_floats(64, 3);
  const PackedMatrix p =
      pack(quant::quantize_matrix(wts.data(), 2, 32, quant::parse_spec("w4g32")));
  PackedView bad = view_of(p);
  bad.row_bytes = 15;
  EXPECT_THROW(w.add_packed_tensor("q", bad), Error);
  bad = view_of(p);
  bad.offsets = p.scales.data();  // offsets on a symmetric scheme
  EXPECT_THROW(w.add_packed_tensor("q", bad), Error);
  w.add_packed_tensor("q", view_of(p));
  w.commit();
  const H5ModelFile f(dir / "m.h5");
  EXPECT_EQ(f.tensors().size(), 2u);
}

}  // namespace
}  // namespace qwenqat::format
