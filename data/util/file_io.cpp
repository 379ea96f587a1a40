// Implementation of file_io.h (POSIX mmap, pread, rename).
#include "data/util/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>

#include "data/util/check.h"

namespace qwenqat {

void* map_huge_pages(size_t bytes) {
  // Over-allocate by one huge page, then unmap the slack before the first 2 MB
  // boundary and past the page-rounded end.
  const size_t len = (bytes + 4095) / 4096 * 4096;
  void* p = ::mmap(nullptr, len + kHugePageBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto at = reinterpret_cast<uintptr_t>(p);
  const uintptr_t start = (at + kHugePageBytes - 1) & ~uintptr_t(kHugePageBytes - 1);
  if (start > at) ::munmap(p, start - at);
  if (const size_t tail = at + kHugePageBytes - start; tail > 0)  // past start + len
    ::munmap(reinterpret_cast<void*>(start + len), tail);
  ::madvise(reinterpret_cast<void*>(start), len, MADV_HUGEPAGE);  // a hint: fails harmlessly
  return reinterpret_cast<void*>(start);
}

void unmap_huge_pages(void* p, size_t bytes) {
  if (p != nullptr) ::munmap(p, bytes);
}

MappedFile::MappedFile(const std::filesystem::path& path, MapMode mode) : path_(path), mode_(mode) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  QWENQAT_CHECK(fd >= 0, "cannot open ", path.string(), ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("cannot stat ", path.string(), ": ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path.string(), " is not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0 && mode == MapMode::kCopy) {
    copy_from(fd);  // closes fd
  } else if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    QWENQAT_CHECK(p != MAP_FAILED, "cannot memory-map ", path.string(), ": ", std::strerror(err));
    data_ = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
}

// Reads the whole file into fresh anonymous memory, in 64 MB slices taken in
// turn by up to one thread per core (a single reader leaves the copy bound by
// one core's page-fault and memcpy rate). Closes fd.
void MappedFile::copy_from(int fd) {
  void* p = map_huge_pages(size_);
  if (p == nullptr) {
    int err = errno;
    ::close(fd);
    const size_t size = size_;
    size_ = 0;
    fail("cannot allocate ", size, " bytes to load ", path_.string(), ": ", std::strerror(err),
         " (load it memory-mapped instead: --mmap)");
  }
  constexpr size_t kSlice = size_t(64) << 20;
  const size_t slices = (size_ + kSlice - 1) / kSlice;
  const size_t workers =
      std::clamp<size_t>(std::thread::hardware_concurrency(), 1, std::min<size_t>(slices, 16));
  std::vector<int> errors(workers, 0);  // errno per worker; -1: end of file early
  auto work = [&](size_t w) {
    for (size_t s = w; s < slices && errors[w] == 0; s += workers) {
      size_t at = s * kSlice;
      const size_t end = std::min(size_, at + kSlice);
      while (at < end) {
        ssize_t n = ::pread(fd, static_cast<uint8_t*>(p) + at, end - at, off_t(at));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          errors[w] = n < 0 ? errno : -1;
          break;
        }
        at += size_t(n);
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) {
    try {
      threads.emplace_back(work, w);
    } catch (const std::system_error&) {  // no thread to be had: read its slices here
      work(w);
    }
  }
  work(0);
  for (auto& t : threads) t.join();
  ::close(fd);
  data_ = static_cast<const uint8_t*>(p);
  for (int err : errors) {
    if (err == 0) continue;
    reset();
    if (err < 0) fail("cannot read ", path_.string(), ": the file got shorter while being read");
    fail("cannot read ", path_.string(), ": ", std::strerror(err));
  }
  ::mprotect(p, size_, PROT_READ);  // read-only like the file map
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), mode_(other.mode_), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    path_ = std::move(other.path_);
    mode_ = other.mode_;
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::release(const uint8_t* p, size_t n) const {
  if (data_ == nullptr || n == 0 || mode_ == MapMode::kCopy) return;
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  uintptr_t begin = (uintptr_t(p) + page - 1) & ~(page - 1);  // whole pages only
  uintptr_t end = (uintptr_t(p) + n) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  QWENQAT_CHECK(in.good(), "cannot open ", path.string(), " for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  QWENQAT_CHECK(!in.bad(), "error reading ", path.string());
  return ss.str();
}

std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  return std::filesystem::path(path.string() + ".tmp." + std::to_string(::getpid()));
}

void commit_temp_file(const std::filesystem::path& temp, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    fail("cannot rename ", temp.string(), " to ", path.string(), ": ", ec.message());
  }
}

AtomicFile::AtomicFile(std::filesystem::path path)
    : path_(std::move(path)), temp_(temp_path_for(path_)) {
  out_.open(temp_, std::ios::binary | std::ios::trunc);
  QWENQAT_CHECK(out_.good(), "cannot write ", path_.string(),
                " (is the directory there and writable?)");
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicFile::commit() {
  out_.flush();
  QWENQAT_CHECK(out_.good(), "error writing ", path_.string(), " (disk full?)");
  out_.close();
  commit_temp_file(temp_, path_);
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  AtomicFile f(path);
  f.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  f.commit();
}

}  // namespace qwenqat
