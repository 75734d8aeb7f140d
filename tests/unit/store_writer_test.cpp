#include "server/store_writer.hpp"

#include <boost/asio/executor_work_guard.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <utility>
#include <vector>

#include "store/memory_store.hpp"

namespace sd::server {
namespace {

store::WriteBatch one_task(const std::string& id) {
  store::WriteBatch b;
  store::StoredTask t;
  t.task_id = id;
  t.task_type = "hash";
  t.task_data_json = "{}";
  b.add_task(std::move(t));
  return b;
}

TEST(StoreWriter, ThreadedJobsRunInOrderOffTheCallerAndCompleteOnTheLoop) {
  boost::asio::io_context io;
  store::MemoryStore st;
  std::vector<int> completed;
  std::vector<std::thread::id> job_threads;
  auto busy = boost::asio::make_work_guard(io);  // as the server's timers do
  {
    StoreWriter w(io, st, true);
    for (int i = 0; i < 50; ++i) {
      w.run(
          [i, &job_threads](store::TaskStore& s) {
            s.write(one_task("t" + std::to_string(i)));
            job_threads.push_back(std::this_thread::get_id());  // jobs never overlap
          },
          [i, &completed] { completed.push_back(i); });
    }
    while (completed.size() < 50) {
      ASSERT_EQ(io.run_one_for(std::chrono::seconds(10)), 1U) << "a completion never came";
    }
  }
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(completed, expected);
  ASSERT_EQ(job_threads.size(), 50U);
  for (const auto& id : job_threads) EXPECT_NE(id, std::this_thread::get_id());
  EXPECT_EQ(st.counts(), (store::StoreCounts{50, 0, 0}));
}

TEST(StoreWriter, WithStoreSeesEveryJobHandedInBeforeIt) {
  boost::asio::io_context io;
  store::MemoryStore st;
  StoreWriter w(io, st, true);
  for (int i = 0; i < 200; ++i) {
    w.run([i](store::TaskStore& s) { s.write(one_task("t" + std::to_string(i))); }, [] {});
  }
  // Right away, while most of them are still queued: it waits for all of them.
  EXPECT_EQ(w.with_store([](store::TaskStore& s) { return s.counts(); }), (store::StoreCounts{200, 0, 0}));
}

TEST(StoreWriter, WithStoreWaitsForTheRunningJob) {
  boost::asio::io_context io;
  store::MemoryStore st;
  StoreWriter w(io, st, true);
  std::promise<void> started;
  std::promise<void> release;
  auto release_f = release.get_future().share();
  w.run(
      [&](store::TaskStore& s) {
        started.set_value();
        release_f.wait();
        s.write(one_task("slow"));
      },
      [] {});
  started.get_future().wait();
  auto reader = std::async(std::launch::async, [&] {
    return w.with_store([](store::TaskStore& s) { return s.find_task("slow").has_value(); });
  });
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  EXPECT_TRUE(reader.get());  // it saw the job's write: it ran after it
}

TEST(StoreWriter, InlineRunsTheJobAndItsCompletionBeforeReturning) {
  boost::asio::io_context io;
  store::MemoryStore st;
  StoreWriter w(io, st, false);
  bool done = false;
  w.run([](store::TaskStore& s) { s.write(one_task("a")); }, [&] { done = true; });
  EXPECT_TRUE(done);
  EXPECT_EQ(st.counts(), (store::StoreCounts{1, 0, 0}));
  EXPECT_EQ(io.poll(), 0U);  // nothing was posted
}

TEST(StoreWriter, DestructorRunsTheJobsAlreadyHandedIn) {
  boost::asio::io_context io;
  store::MemoryStore st;
  {
    StoreWriter w(io, st, true);
    for (int i = 0; i < 20; ++i) w.run([i](store::TaskStore& s) { s.write(one_task("t" + std::to_string(i))); }, [] {});
  }
  EXPECT_EQ(st.counts(), (store::StoreCounts{20, 0, 0}));
}

TEST(StoreWriter, WritesBehindAFailedWriteAreNotRunAndSaySoInOrderUntilTheFailureIsCleared) {
  boost::asio::io_context io;
  store::MemoryStore st;
  auto busy = boost::asio::make_work_guard(io);
  StoreWriter w(io, st, true);
  std::promise<void> all_queued;
  std::shared_future<void> queued = all_queued.get_future().share();
  std::vector<std::pair<int, bool>> done;  // (write, ran)
  auto record = [&done](int i) { return [&done, i](bool ran) { done.emplace_back(i, ran); }; };
  w.run_write(
      [queued](store::TaskStore&) {
        queued.wait();  // the next ones are queued behind this one by now
        return false;   // e.g. the database went away
      },
      record(0));
  for (int i = 1; i <= 2; ++i) {
    w.run_write(
        [i](store::TaskStore& s) {
          s.write(one_task("behind" + std::to_string(i)));
          return true;
        },
        record(i));
  }
  all_queued.set_value();
  while (done.size() < 3) {
    ASSERT_EQ(io.run_one_for(std::chrono::seconds(10)), 1U) << "a completion never came";
  }
  EXPECT_EQ(done, (std::vector<std::pair<int, bool>>{{0, true}, {1, false}, {2, false}}));
  EXPECT_TRUE(w.write_failed());
  EXPECT_EQ(st.counts(), (store::StoreCounts{0, 0, 0}));  // neither write behind it ran

  w.clear_failure();  // nothing under way: the caller retries
  w.run_write(
      [](store::TaskStore& s) {
        s.write(one_task("retried"));
        return true;
      },
      record(3));
  ASSERT_EQ(io.run_one_for(std::chrono::seconds(10)), 1U);
  EXPECT_EQ(done.back(), (std::pair<int, bool>{3, true}));
  EXPECT_FALSE(w.write_failed());
  EXPECT_EQ(st.counts(), (store::StoreCounts{1, 0, 0}));
}

}  // namespace
}  // namespace sd::server
