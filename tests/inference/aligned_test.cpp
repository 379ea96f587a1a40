// AlignedVector: data on a 64-byte line for every element type and size,
// std::vector's value-initializing resize, and a size past the address
// space an error rather than a wrapped-around allocation; HugePageVector:
// large blocks on 2 MB boundaries.
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

// HugePageVector: blocks of 2 MB or more on 2 MB boundaries (map_huge_pages),
// smaller ones on a cache line; values kept across a reallocation that
// crosses the threshold.
TEST(HugePageVector, LargeBlocksStartOnAHugePage) {
  HugePageVector<uint16_t> v(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kCacheLine, 0u);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>(i * 7);
  v.resize(kHugePageBytes / sizeof(uint16_t) + 3);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageBytes, 0u);
  for (std::size_t i = 0; i < 1000; ++i) ASSERT_EQ(v[i], static_cast<uint16_t>(i * 7)) << i;
  for (std::size_t i = 1000; i < v.size(); ++i) ASSERT_EQ(v[i], 0) << i;
  HugePageVector<uint8_t> big(3 * kHugePageBytes + 5, 9);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % kHugePageBytes, 0u);
  EXPECT_EQ(big.back(), 9);
  HugePageAllocator<float> a;
  EXPECT_THROW(a.allocate(std::numeric_limits<std::size_t>::max() / 2), std::bad_array_new_length);
}

}  // namespace
}  // namespace qwenqat::engine
