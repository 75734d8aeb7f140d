#include "worker/executor.hpp"

namespace sd::worker {

Executor::Executor(int threads) {
  threads_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Executor::~Executor() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

void Executor::post(Job job) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void Executor::post_batch(std::vector<Job>& jobs) {
  if (jobs.empty()) return;
  const std::size_t n = jobs.size();
  {
    std::lock_guard lock(mutex_);
    for (auto& j : jobs) queue_.push_back(std::move(j));
  }
  jobs.clear();
  if (n >= threads_.size()) {
    ready_.notify_all();
  } else {
    for (std::size_t i = 0; i < n; ++i) ready_.notify_one();
  }
}

void Executor::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      // while-loop semantics: spurious wake-ups re-check the predicate.
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace sd::worker
