#pragma once
/// Runs the server's store work off its event loop, so that a commit never stalls the
/// network: while one group commit is on disk (or on its way to PostgreSQL), the loop
/// goes on reading, dispatching and gathering the next batch.
///
/// Jobs run one at a time, in the order they were handed in, on a thread of their own;
/// each job's completion is posted back to the io_context. In inline mode (the memory
/// store, where a commit costs less than a thread hand-off) jobs run at once on the
/// calling thread and their completion is called before run() returns.
///
/// Thread-safety: run() and with_store() are called from the event-loop thread only.
/// The store is touched by one thread at a time: the job thread while a job runs, the
/// caller of with_store() otherwise.

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "store/task_store.hpp"

namespace sd::server {

class StoreWriter {
 public:
  using Job = std::function<void(store::TaskStore&)>;

  /// `threaded`: run jobs on a thread of their own; else inline.
  StoreWriter(boost::asio::io_context& io, store::TaskStore& store, bool threaded);
  /// Finishes the jobs handed in, then joins the thread. Completions not yet run are
  /// dropped with the io_context's queue.
  ~StoreWriter();

  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  /// Runs `job` with the store, then `done` on the event loop. `job` must not throw
  /// (catch the store's errors inside it and report them through captured state).
  void run(Job job, std::function<void()> done);

  /// A write that later writes build on: `write` returns whether it succeeded. Once one
  /// fails, the writes handed in behind it are not run, and their `done` is told so
  /// (`ran` false), in order, so that the caller can retry them first, in that order;
  /// until clear_failure(), which the caller calls when no write is under way.
  using Write = std::function<bool(store::TaskStore&)>;
  void run_write(Write write, std::function<void(bool ran)> done);
  /// A write failed since the last clear_failure() (its completion may not have run yet).
  [[nodiscard]] bool write_failed() const noexcept { return write_failed_.load(std::memory_order_acquire); }
  void clear_failure() noexcept { write_failed_.store(false, std::memory_order_relaxed); }

  /// Runs `f` with the store on the calling thread once every job handed in so far has
  /// run (so `f` sees all their writes). Called from the event-loop thread, the only one
  /// that hands jobs in, so none arrives meanwhile.
  template <class F>
  decltype(auto) with_store(F&& f) {
    wait_idle();
    std::lock_guard lock(store_mu_);
    return std::forward<F>(f)(store_);
  }

  [[nodiscard]] bool threaded() const noexcept { return threaded_; }

 private:
  struct Entry {
    Job job;
    std::function<void()> done;
  };
  void loop();
  void wait_idle();

  boost::asio::io_context& io_;
  store::TaskStore& store_;
  const bool threaded_;
  std::mutex store_mu_;  ///< held while the store is in use
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable idle_cv_;  ///< the queue is empty and no job runs
  std::deque<Entry> queue_;
  bool busy_ = false;                ///< the thread is running a job
  bool stopping_ = false;
  std::atomic<bool> write_failed_{false};  ///< set on the job thread, cleared by the loop
  std::thread thread_;
};

}  // namespace sd::server
