// Tests for data/util/file_io.h: maps, atomic writes that leave nothing behind.
#include "data/util/file_io.h"

#include <gtest/gtest.h>

#include <cstring>

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

// kCopy: the same bytes as the map, over more than one 64 MB read slice with
// a ragged tail; release() must not drop the copy's pages (they would read
// back as zeros).
TEST(FileIo, CopyModeHoldsTheFilesBytes) {
  testing::TempDir dir;
  std::string content((size_t(64) << 20) + 12345, '\0');
  uint32_t x = 12345;
  for (char& c : content) c = char((x = x * 1664525u + 1013904223u) >> 24);
  write_file_atomic(dir / "big.bin", content);
  MappedFile map(dir / "big.bin"), copy(dir / "big.bin", MapMode::kCopy);
  EXPECT_EQ(map.mode(), MapMode::kMap);
  EXPECT_EQ(copy.mode(), MapMode::kCopy);
  ASSERT_EQ(copy.size(), content.size());
  EXPECT_NE(copy.data(), map.data());
  EXPECT_EQ(0, std::memcmp(copy.data(), content.data(), content.size()));
  copy.release(copy.data(), copy.size());
  EXPECT_EQ(0, std::memcmp(copy.data(), content.data(), content.size()));
  MappedFile moved(std::move(copy));
  EXPECT_EQ(moved.mode(), MapMode::kCopy);
  EXPECT_EQ(0, std::memcmp(moved.data() + content.size() - 100,
                           content.data() + content.size() - 100, 100));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(moved.data()) % kHugePageBytes, 0u);
}

// map_huge_pages: 2 MB aligned, zero-filled, every byte writable (sizes that
// are not whole pages included); the slack around it unmapped, so many maps
// and unmaps do not grow the address space.
TEST(FileIo, HugePagesAreAlignedZeroedAndWritable) {
  for (size_t bytes : {size_t(1), size_t(4097), kHugePageBytes, 5 * kHugePageBytes / 2 + 123}) {
    for (int rep = 0; rep < 50; ++rep) {
      auto* p = static_cast<uint8_t*>(map_huge_pages(bytes));
      ASSERT_NE(p, nullptr) << bytes;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageBytes, 0u) << bytes;
      if (rep == 0) {
        for (size_t i = 0; i < bytes; i += 4093) EXPECT_EQ(p[i], 0) << bytes << " at " << i;
        EXPECT_EQ(p[bytes - 1], 0);
        std::memset(p, 0x5a, bytes);
        EXPECT_EQ(p[bytes - 1], 0x5a);
      }
      unmap_huge_pages(p, bytes);
    }
  }
  unmap_huge_pages(nullptr, 0);  // a no-op
}

TEST(FileIo, CopyModeErrorsNameThePath) {
  testing::TempDir dir;
  write_file_atomic(dir / "empty", "");
  EXPECT_EQ(MappedFile(dir / "empty", MapMode::kCopy).size(), 0u);
  for (const auto& bad : {std::filesystem::path("/nonexistent/file.bin"), dir.path()}) {
    try {
      MappedFile m(bad, MapMode::kCopy);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace qwenqat
