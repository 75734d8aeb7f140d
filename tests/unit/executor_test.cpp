#include "worker/executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sd::worker {
namespace {

using namespace std::chrono_literals;

/// Generous: only a broken pool (or a badly starved machine) comes near it.
constexpr auto kDeadline = 30s;

/// A countdown whose waits give up at a deadline (std::latch cannot).
class Countdown {
 public:
  explicit Countdown(std::size_t n) : left_(n) {}

  void count_down() {
    std::lock_guard lock(mutex_);
    if (left_ > 0 && --left_ == 0) done_.notify_all();
  }

  /// True when the count reached zero before `timeout`.
  bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return done_.wait_for(lock, timeout, [this] { return left_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t left_;
};

/// A gate that jobs wait at (with a deadline) until the test opens it.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return opened_.wait_for(lock, timeout, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

/// Each scenario runs with 1, 2 and 4 threads, as Taskflow's unit tests do.
class ExecutorThreads : public ::testing::TestWithParam<int> {
 protected:
  int threads() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Executor, ExecutorThreads, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return "Threads" + std::to_string(p.param);
                         });

TEST_P(ExecutorThreads, ReportsItsThreadCount) {
  Executor executor(threads());
  EXPECT_EQ(executor.threads(), threads());
}

TEST_P(ExecutorThreads, RunsEveryPostedJobExactlyOnce) {
  constexpr std::size_t kJobs = 10'000;
  std::vector<std::atomic<int>> runs(kJobs);
  Countdown done(kJobs);
  Executor executor(threads());
  for (std::size_t i = 0; i < kJobs; ++i) {
    executor.post([&runs, &done, i] {
      runs[i].fetch_add(1, std::memory_order_relaxed);
      done.count_down();
    });
  }
  ASSERT_TRUE(done.wait_for(kDeadline));
  for (std::size_t i = 0; i < kJobs; ++i) ASSERT_EQ(runs[i].load(), 1) << "job " << i;
}

TEST_P(ExecutorThreads, PostBatchRunsEveryJobAndEmptiesTheVector) {
  constexpr std::size_t kJobs = 1'000;
  std::atomic<std::size_t> ran{0};
  Countdown done(kJobs);
  Executor executor(threads());
  std::vector<Executor::Job> batch;
  for (std::size_t i = 0; i < kJobs; ++i) {
    batch.emplace_back([&] {
      ran.fetch_add(1, std::memory_order_relaxed);
      done.count_down();
    });
  }
  executor.post_batch(batch);
  EXPECT_TRUE(batch.empty());
  ASSERT_TRUE(done.wait_for(kDeadline));
  EXPECT_EQ(ran.load(), kJobs);
}

TEST_P(ExecutorThreads, PostBatchSmallerThanThePoolRunsEveryJob) {
  // Fewer jobs than threads: post_batch wakes one thread per job rather than all.
  Countdown done(1);
  Executor executor(threads());
  std::vector<Executor::Job> batch;
  batch.emplace_back([&] { done.count_down(); });
  executor.post_batch(batch);
  EXPECT_TRUE(done.wait_for(kDeadline));
}

TEST_P(ExecutorThreads, AnEmptyBatchIsHarmless) {
  Countdown done(1);
  Executor executor(threads());
  std::vector<Executor::Job> batch;
  executor.post_batch(batch);
  executor.post([&] { done.count_down(); });
  EXPECT_TRUE(done.wait_for(kDeadline));
}

TEST_P(ExecutorThreads, PostBatchFromSeveralThreadsAtOnceRunsEveryJob) {
  constexpr int kProducers = 4;
  constexpr int kBatches = 100;
  constexpr int kPerBatch = 25;
  constexpr std::size_t kJobs = std::size_t{kProducers} * kBatches * kPerBatch;
  std::vector<std::atomic<int>> runs(kJobs);
  Countdown done(kJobs);
  Executor executor(threads());
  {
    Countdown ready(kProducers);
    Gate go;
    std::vector<std::jthread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&, p] {
        ready.count_down();
        if (!go.wait_for(kDeadline)) return;  // start together, to contend on the queue
        std::vector<Executor::Job> batch;
        for (int b = 0; b < kBatches; ++b) {
          for (int j = 0; j < kPerBatch; ++j) {
            const std::size_t index = (static_cast<std::size_t>(p) * kBatches + b) * kPerBatch + j;
            batch.emplace_back([&runs, &done, index] {
              runs[index].fetch_add(1, std::memory_order_relaxed);
              done.count_down();
            });
          }
          executor.post_batch(batch);
          EXPECT_TRUE(batch.empty());
        }
      });
    }
    ASSERT_TRUE(ready.wait_for(kDeadline));
    go.open();
  }  // producers joined
  ASSERT_TRUE(done.wait_for(kDeadline));
  for (std::size_t i = 0; i < kJobs; ++i) ASSERT_EQ(runs[i].load(), 1) << "job " << i;
}

TEST_P(ExecutorThreads, PostFromSeveralThreadsAtOnceRunsEveryJob) {
  constexpr int kProducers = 4;
  constexpr int kEach = 2'000;
  std::atomic<int> ran{0};
  Countdown done(std::size_t{kProducers} * kEach);
  Executor executor(threads());
  {
    std::vector<std::jthread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) {
          executor.post([&] {
            ran.fetch_add(1, std::memory_order_relaxed);
            done.count_down();
          });
        }
      });
    }
  }
  ASSERT_TRUE(done.wait_for(kDeadline));
  EXPECT_EQ(ran.load(), kProducers * kEach);
}

TEST_P(ExecutorThreads, JobsRunInParallelOnEveryThread) {
  // Each job waits until all `threads()` jobs have started: that only ends well if they
  // run at the same time, one per thread.
  const auto n = static_cast<std::size_t>(threads());
  Countdown all_started(n);
  std::atomic<std::size_t> met{0};
  Countdown finished(n);
  Executor executor(threads());
  for (std::size_t i = 0; i < n; ++i) {
    executor.post([&] {
      all_started.count_down();
      if (all_started.wait_for(kDeadline)) met.fetch_add(1);
      finished.count_down();
    });
  }
  ASSERT_TRUE(finished.wait_for(kDeadline * 2));
  EXPECT_EQ(met.load(), n);
}

TEST_P(ExecutorThreads, AJobMayPostMoreJobs) {
  Countdown done(100);
  std::function<void(int)> chain;  // outlives the executor: queued jobs call it
  Executor executor(threads());
  chain = [&](int left) {
    done.count_down();
    if (left > 1) executor.post([&chain, left] { chain(left - 1); });
  };
  executor.post([&chain] { chain(100); });
  EXPECT_TRUE(done.wait_for(kDeadline));
}

TEST_P(ExecutorThreads, DestructorRunsEveryQueuedJobThenJoins) {
  constexpr int kQueued = 1'000;
  std::atomic<int> ran{0};
  Gate gate;
  Countdown blocked(static_cast<std::size_t>(threads()));
  {
    Executor executor(threads());
    // Occupy every thread so that the jobs below are still queued when the
    // destructor starts.
    for (int i = 0; i < threads(); ++i) {
      executor.post([&] {
        blocked.count_down();
        (void)gate.wait_for(kDeadline);
      });
    }
    ASSERT_TRUE(blocked.wait_for(kDeadline));
    for (int i = 0; i < kQueued; ++i) executor.post([&] { ran.fetch_add(1, std::memory_order_relaxed); });
    EXPECT_EQ(ran.load(), 0);
    gate.open();
  }  // ~Executor
  EXPECT_EQ(ran.load(), kQueued);
}

TEST_P(ExecutorThreads, DestructorWithNothingToDoReturns) {
  for (int i = 0; i < 50; ++i) {
    Executor executor(threads());
  }
  SUCCEED();
}

TEST(ExecutorOrder, OneThreadRunsJobsInPostingOrder) {
  // Only meaningful with one thread: with more, jobs may finish in any order.
  std::vector<int> order;
  {
    Executor executor(1);
    for (int i = 0; i < 1'000; ++i) executor.post([&order, i] { order.push_back(i); });
    std::vector<Executor::Job> batch;
    for (int i = 1'000; i < 2'000; ++i) batch.emplace_back([&order, i] { order.push_back(i); });
    executor.post_batch(batch);
  }  // joined: `order` is complete and no longer shared
  ASSERT_EQ(order.size(), 2'000u);
  for (int i = 0; i < 2'000; ++i) ASSERT_EQ(order[static_cast<std::size_t>(i)], i);
}

}  // namespace
}  // namespace sd::worker
