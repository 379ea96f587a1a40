// Cache-line aligned std::vector storage for the engine's hot buffers, and
// huge-page storage for large streamed arrays (HugePageVector, below).
//
// std::allocator aligns to 16 bytes (the engine's activation buffers came
// at 16 or 48 mod 64), so every 64-byte vector load from such a buffer (the
// int8 activations of the AVX-512 tiles, fp16 KV rows) straddled two cache
// lines. AlignedVector<T> starts its data on a 64-byte boundary (batch-16
// decode 1.02-1.22x, docs/performance/2026-12-06-zen5-sixth-session.md).
// Same contract as std::vector otherwise (resize value-initializes); rows
// inside it are aligned where their byte length is a multiple of 64.
#pragma once

#include <cstddef>
#include <limits>
#include <new>
#include <vector>

#include "data/util/file_io.h"

namespace qwenqat::engine {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
struct CacheAlignedAllocator {
  using value_type = T;
  CacheAlignedAllocator() = default;
  template <class U>
  constexpr CacheAlignedAllocator(const CacheAlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) noexcept {
    ::operator delete (p, std::align_val_t{kCacheLine});
  }
  template <class U>
  bool operator==(const CacheAlignedAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using AlignedVector = std::vector<T, CacheAlignedAllocator<T>>;

// Storage for large read-mostly arrays streamed by the kernels (in-memory
// packed weights): blocks of kHugePageBytes (file_io.h) or more come from
// map_huge_pages (2 MB aligned, on transparent huge pages where the kernel
// has them, as a .h5 model loaded by copy); smaller ones from
// CacheAlignedAllocator. `bench --random-config` (MemorySource) w4g32 decode
// on a Zen 4 VM, alternating with the .h5 of the same shapes: from
// std::vectors 0.61-0.84 of the .h5's tokens/s (three rounds), on 64-byte
// lines 0.59-0.89 (seven), on huge pages too 0.72-1.21 (eight; 0.92-0.95 in
// five). Throws std::bad_alloc when the system has no memory.
template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  constexpr HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    if (n * sizeof(T) < kHugePageBytes) return CacheAlignedAllocator<T>().allocate(n);
    void* p = map_huge_pages(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < kHugePageBytes) return CacheAlignedAllocator<T>().deallocate(p, n);
    unmap_huge_pages(p, n * sizeof(T));
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

// buf's data, grown to at least n elements (never shrunk): a scratch buffer
// kept across calls (a thread_local one is per thread). The pointer is valid
// until the next call that grows buf.
template <class T>
T* aligned_scratch(AlignedVector<T>& buf, std::size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

}  // namespace qwenqat::engine
