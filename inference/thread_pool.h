// A fixed-size thread pool for the engine's data-parallel loops. Work is cut
// into chunks whose boundaries depend only on the problem (never on the
// number of threads), and every chunk is computed by exactly one thread, so
// results are bit-identical for any thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qwenqat::engine {

class ThreadPool {
 public:
  // 1 <= threads <= kMaxThreads (the calling thread counts as one worker);
  // throws qwenqat::Error naming --threads otherwise, or when the system
  // cannot start that many threads (the ones started are stopped first).
  static constexpr int kMaxThreads = 1024;
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Calls fn(chunk) for chunk in [0, num_chunks), spread over the workers;
  // returns when all are done. Rethrows the first exception a chunk threw.
  // Not reentrant: one parallel_for at a time per pool (fn must not call it).
  void parallel_for(int64_t num_chunks, const std::function<void(int64_t)>& fn);

  // Calls fn(begin, end) on one contiguous range of [0, n) per thread (n * t
  // / k .. n * (t + 1) / k for k = min(n, size()) ranges), or fn(0, n) on the
  // calling thread when n < min_parallel. The ranges depend on the thread
  // count, so fn must treat every index on its own (row-wise work, as a
  // norm or a quantizer per row): then results do not depend on the split.
  // Not reentrant, as parallel_for.
  void parallel_ranges(int64_t n, int64_t min_parallel,
                       const std::function<void(int64_t, int64_t)>& fn);

  // Hardware threads of this machine (>= 1).
  static int hardware_threads();

 private:
  void worker_loop();
  void stop_workers();  // wakes and joins every worker
  void run_chunks();

  int threads_;
  std::vector<std::thread> workers_;
  // Workers spin briefly on generation_ (decode issues hundreds of small
  // parallel_fors per token; a condition-variable wake-up costs tens of us),
  // then sleep on cv_start_.
  std::mutex mu_;
  std::condition_variable cv_start_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t num_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> active_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;  // guarded by mu_
};

}  // namespace qwenqat::engine
