// Cache-line aligned std::vector storage for the engine's hot buffers.
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

// buf's data, grown to at least n elements (never shrunk): a scratch buffer
// kept across calls (a thread_local one is per thread). The pointer is valid
// until the next call that grows buf.
template <class T>
T* aligned_scratch(AlignedVector<T>& buf, std::size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

}  // namespace qwenqat::engine
