// File helpers shared by every library: read-only memory maps, whole-file
// reads, and atomic writes (temp file + rename, so a crash or an error never
// leaves a partial output behind).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

namespace qwenqat {

// How a MappedFile holds the file's bytes.
//  kMap:  the file's own pages (mmap): opens at once, pages are shared with
//         other processes and the page cache, read from disk on first touch.
//  kCopy: a private copy in anonymous memory on transparent huge pages
//         (MADV_HUGEPAGE; 4 KB pages where the kernel has none), read with up
//         to one thread per core. Costs one read of the file at open; streaming
//         reads of it then take fewer TLB misses and no page-cache faults (the
//         engine's decode is up to 15% faster, docs/PERFORMANCE.md).
enum class MapMode { kMap, kCopy };

// A read-only memory map of a whole file. Move-only; the mapping lives as long
// as the object. Empty files map to an empty span. Safe to read from many
// threads at once.
class MappedFile {
 public:
  MappedFile() = default;
  // Throws qwenqat::Error naming `path` if it cannot be opened, mapped or
  // (kCopy) read in full.
  explicit MappedFile(const std::filesystem::path& path, MapMode mode = MapMode::kMap);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  MapMode mode() const { return mode_; }
  // Tells the kernel the pages of [p, p+n) (inside this map) are no longer
  // needed, so they stop counting toward RSS (they are re-read from the file
  // if touched again). Used after copying a tensor out of the map. A no-op for
  // kCopy (dropped anonymous pages would read back as zeros).
  void release(const uint8_t* p, size_t n) const;

 private:
  void reset();
  void copy_from(int fd);
  std::filesystem::path path_;
  MapMode mode_ = MapMode::kMap;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The size of a transparent huge page on x86-64.
inline constexpr size_t kHugePageBytes = size_t(2) << 20;

// Anonymous read-write memory for `bytes` (> 0) bytes, zero-filled, starting
// on a kHugePageBytes boundary and advised onto transparent huge pages (MADV_HUGEPAGE:
// a hint; 4 KB pages where the kernel has none), so that streaming reads of
// it take one TLB entry per 2 MB. Returns nullptr with errno set when the
// system has no memory to give. Release with unmap_huge_pages(p, bytes).
void* map_huge_pages(size_t bytes);
void unmap_huge_pages(void* p, size_t bytes);

// Reads a whole file into a string; throws naming the file if unreadable.
std::string read_file(const std::filesystem::path& path);

// Writes `path` atomically: the content goes to "<path>.tmp.<pid>" which is
// renamed over `path` on commit(). If the object is destroyed without
// commit() (an exception, say) the temp file is removed and `path` is
// untouched. Not thread-safe; one writer per object.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return out_; }
  const std::filesystem::path& temp_path() const { return temp_; }
  // Flushes, checks for write errors and renames; throws naming the file.
  void commit();

 private:
  std::filesystem::path path_, temp_;
  std::ofstream out_;
  bool committed_ = false;
};

// Convenience: atomically replaces `path` with `content`.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Temp-name helper for writers that produce a file through another library
// (HDF5): returns "<path>.tmp.<pid>"; the caller renames with
// commit_temp_file() or removes it on failure.
std::filesystem::path temp_path_for(const std::filesystem::path& path);
void commit_temp_file(const std::filesystem::path& temp, const std::filesystem::path& path);

}  // namespace qwenqat
