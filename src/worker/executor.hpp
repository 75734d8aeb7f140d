#pragma once
/// A fixed pool of threads running jobs in FIFO order.
///
/// Hand-off is batched: post_batch() queues many jobs under one lock and wakes only as
/// many threads as there are new jobs (no wake-up storm for a burst of tiny tasks).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sd::worker {

/// Thread-safety: post() and post_batch() may be called from any thread.
/// The destructor runs every job already queued, then joins the threads.
class Executor {
 public:
  using Job = std::function<void()>;

  explicit Executor(int threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void post(Job job);
  /// Moves every job of `jobs` into the queue (leaves `jobs` empty).
  void post_batch(std::vector<Job>& jobs);

  [[nodiscard]] int threads() const noexcept { return static_cast<int>(threads_.size()); }

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sd::worker
