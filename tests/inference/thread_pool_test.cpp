// ThreadPool: every chunk once, errors rethrown, the --threads bounds, and
// parallel_ranges' split (each index once, serial below its threshold).
#include "inference/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "data/util/check.h"

namespace qwenqat::engine {
namespace {

TEST(ThreadPool, RunsEveryChunkOnceAndRethrows) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(1000);
  for (int rep = 0; rep < 50; ++rep) {
    pool.parallel_for(1000, [&](int64_t c) { hits[c].fetch_add(1); });
  }
  for (auto& h : hits) ASSERT_EQ(h.load(), 50);
  EXPECT_THROW(pool.parallel_for(10,
                                 [&](int64_t c) {
                                   if (c == 7) fail("chunk 7");
                                 }),
               Error);
  // The pool still works after an error.
  std::atomic<int> n{0};
  pool.parallel_for(5, [&](int64_t) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 5);
}

TEST(ThreadPool, ZeroOrTooManyThreadsIsAClearError) {
  for (int n : {0, -3, ThreadPool::kMaxThreads + 1}) {
    try {
      ThreadPool pool(n);
      FAIL() << "expected an error for " << n;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--threads"), std::string::npos) << e.what();
    }
  }
}

TEST(ThreadPool, ParallelRangesCoverEveryIndexOnceInContiguousRanges) {
  for (const int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (const int64_t n : {0, 1, 2, 3, 7, 100}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> calls{0};
      pool.parallel_ranges(n, 2, [&](int64_t b, int64_t e) {
        EXPECT_LE(0, b);
        EXPECT_LE(b, e);
        EXPECT_LE(e, n);
        calls.fetch_add(1);
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "n " << n << ", threads " << threads;
      const int want = n >= 2 ? static_cast<int>(std::min<int64_t>(n, threads)) : 1;
      EXPECT_EQ(calls.load(), want) << "n " << n << ", threads " << threads;
    }
  }
  // Below min_parallel: one call, on the calling thread.
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  int calls = 0;
  pool.parallel_ranges(5, 6, [&](int64_t b, int64_t e) {
    ++calls;
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 5);
    EXPECT_EQ(std::this_thread::get_id(), caller);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(pool.parallel_ranges(10, 2,
                                    [&](int64_t b, int64_t) {
                                      if (b > 0) fail("range at ", b);
                                    }),
               Error);
}

}  // namespace
}  // namespace qwenqat::engine
