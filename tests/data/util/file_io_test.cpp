// Tests for data/util/file_io.h: maps, atomic writes that leave nothing behind.
#include "data/util/file_io.h"

#include <gtest/gtest.h>

#include "data/util/check.h"
#include "tests/util/test_util.h"

namespace qwenqat {
namespace {

TEST(FileIo, AtomicWriteThenMap) {
  testing::TempDir dir;
  write_file_atomic(dir / "a.bin", "hello");
  MappedFile m(dir / "a.bin");
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), 5), "hello");
  EXPECT_FALSE(std::filesystem::exists(temp_path_for(dir / "a.bin")));
}

TEST(FileIo, UncommittedWriteLeavesNothing) {
  testing::TempDir dir;
  write_file_atomic(dir / "keep.txt", "old");
  {
    AtomicFile f(dir / "keep.txt");
    f.stream() << "new partial";
  }  // no commit: as if an exception was thrown
  EXPECT_EQ(read_file(dir / "keep.txt"), "old");
  EXPECT_FALSE(std::filesystem::exists(temp_path_for(dir / "keep.txt")));
}

TEST(FileIo, UnwritableDirectoryIsAClearError) {
  try {
    write_file_atomic("/nonexistent-dir/x.txt", "x");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.txt"), std::string::npos);
  }
}

TEST(FileIo, MissingFileNamesThePath) {
  try {
    MappedFile m("/nonexistent/file.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/file.bin"), std::string::npos);
  }
}

TEST(FileIo, EmptyFileMapsEmpty) {
  testing::TempDir dir;
  write_file_atomic(dir / "empty", "");
  MappedFile m(dir / "empty");
  EXPECT_EQ(m.size(), 0u);
}

}  // namespace
}  // namespace qwenqat
