// AlignedVector: data on a 64-byte line for every element type and size,
// std::vector's value-initializing resize, and a size past the address
// space an error rather than a wrapped-around allocation.
#include "inference/kernels/aligned.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <new>

namespace qwenqat::engine {
namespace {

template <class T>
void expect_aligned_for_sizes() {
  for (std::size_t n : {1u, 3u, 17u, 1000u, 100000u}) {
    AlignedVector<T> v(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kCacheLine, 0u) << n;
    v.resize(3 * n + 1);  // reallocates: the new block is aligned too
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kCacheLine, 0u) << n;
  }
}

TEST(AlignedVector, DataStartsOnACacheLine) {
  expect_aligned_for_sizes<int8_t>();
  expect_aligned_for_sizes<uint16_t>();
  expect_aligned_for_sizes<float>();
  expect_aligned_for_sizes<int32_t>();
}

TEST(AlignedVector, ResizeValueInitializes) {
  AlignedVector<float> v(4, 2.5f);
  v.resize(9);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(v[i], 2.5f);
  for (std::size_t i = 4; i < 9; ++i) EXPECT_EQ(v[i], 0.0f);
}

TEST(AlignedVector, OversizedAllocationThrows) {
  CacheAlignedAllocator<float> a;
  EXPECT_THROW(a.allocate(std::numeric_limits<std::size_t>::max() / 2), std::bad_array_new_length);
}

}  // namespace
}  // namespace qwenqat::engine
