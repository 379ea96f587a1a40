// ThreadPool: persistent workers that spin briefly, then sleep, waiting for
// the next parallel_for; chunks are claimed through an atomic counter.
#include "inference/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <system_error>

#include "data/util/check.h"

namespace qwenqat::engine {
namespace {
// Spin ~100 us before sleeping / yielding: long enough to catch the next
// matmul of a decode step, short enough not to starve an oversubscribed CPU.
constexpr int kSpinIterations = 4000;
inline void cpu_relax() { _mm_pause(); }
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  QWENQAT_CHECK(threads >= 1 && threads <= kMaxThreads, "--threads must be 1..", kMaxThreads,
                " (got ", threads, "); leave it out to use all ", hardware_threads(),
                " hardware threads");
  try {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  } catch (const std::system_error& e) {
    stop_workers();
    fail("--threads ", threads, ": cannot start that many threads (", e.what(), ")");
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void ThreadPool::run_chunks() {
  for (;;) {
    if (failed_.load(std::memory_order_relaxed)) return;
    const int64_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (chunk >= num_chunks_) return;
    try {
      (*fn_)(chunk);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true);
    }
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      cpu_relax();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    run_chunks();
    active_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_ranges(int64_t n, int64_t min_parallel,
                                 const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t k = n >= min_parallel ? std::min<int64_t>(n, threads_) : 1;
  if (k <= 1) return fn(0, n);
  parallel_for(k, [&](int64_t t) { fn(n * t / k, n * (t + 1) / k); });
}

void ThreadPool::parallel_for(int64_t num_chunks, const std::function<void(int64_t)>& fn) {
  if (num_chunks <= 0) return;
  if (workers_.empty() || num_chunks == 1) {
    for (int64_t c = 0; c < num_chunks; ++c) fn(c);
    return;
  }
  fn_ = &fn;
  num_chunks_ = num_chunks;
  next_chunk_.store(0);
  failed_.store(false);
  active_.store(static_cast<int>(workers_.size()));
  {
    // Publishing under the mutex pairs with the sleeping workers' predicate.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_start_.notify_all();
  run_chunks();
  for (int spins = 0; active_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations) {
      cpu_relax();
    } else {
      std::this_thread::yield();  // a worker was descheduled: let it run
    }
  }
  fn_ = nullptr;
  if (failed_.load()) {
    std::exception_ptr err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      err = error_;
      error_ = nullptr;
    }
    failed_.store(false);
    std::rethrow_exception(err);
  }
}

}  // namespace qwenqat::engine
