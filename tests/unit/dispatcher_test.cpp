#include "server/dispatcher.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sd::server {
namespace {

using namespace std::chrono_literals;
using proto::ErrorCode;

// ---- a sink that records every effect ------------------------------------------------

template <class T>
struct Sent {
  ConnId conn = 0;
  T msg;
};

class RecordingSink : public DispatchSink {
 public:
  void send_task(ConnId worker, const proto::TaskMsg& task, std::uint64_t /*seq*/) override {
    tasks.push_back({worker, task});
  }
  void send_cancel(ConnId worker, const proto::CancelMsg& cancel) override { cancels.push_back({worker, cancel}); }
  void send_result(ConnId client, const proto::ResultMsg& result, std::string_view line) override {
    // The line is the result as encoded once for the record and the client.
    EXPECT_EQ(std::string(line) + "\n", proto::to_json_line(result));
    results.push_back({client, result});
  }
  void send_error(ConnId conn, const proto::ErrorMsg& error) override { errors.push_back({conn, error}); }
  void send_accepted(ConnId client, std::string_view task_id) override {
    accepted.push_back({client, std::string(task_id)});
  }

  std::vector<proto::TaskMsg> tasks_to(ConnId worker) const { return to(tasks, worker); }
  std::vector<proto::ResultMsg> results_to(ConnId client) const { return to(results, client); }
  std::vector<proto::ErrorMsg> errors_to(ConnId conn) const { return to(errors, conn); }
  std::vector<proto::CancelMsg> cancels_to(ConnId worker) const { return to(cancels, worker); }

  std::vector<Sent<proto::TaskMsg>> tasks;
  std::vector<Sent<proto::CancelMsg>> cancels;
  std::vector<Sent<proto::ResultMsg>> results;
  std::vector<Sent<proto::ErrorMsg>> errors;
  std::vector<Sent<std::string>> accepted;

 private:
  template <class T>
  static std::vector<T> to(const std::vector<Sent<T>>& sent, ConnId conn) {
    std::vector<T> out;
    for (const auto& s : sent) {
      if (s.conn == conn) out.push_back(s.msg);
    }
    return out;
  }
};

// ---- a harness with explicit time ------------------------------------------------------

constexpr ConnId kClient = 1;
constexpr ConnId kOtherClient = 2;
constexpr ConnId kW1 = 101;
constexpr ConnId kW2 = 102;
constexpr ConnId kW3 = 103;

/// Far enough from the clock's epoch that "now - epoch" is never a small number.
const TimePoint kT0 = TimePoint{} + 1000h;

proto::TaskMsg task(std::string id, std::string type = "hash", int priority = 0) {
  proto::TaskMsg t;
  t.task_id = std::move(id);
  t.task_type = std::move(type);
  t.task_data = R"({"text":"x"})";
  t.priority = priority;
  return t;
}

proto::TaskMsg with_timeout(proto::TaskMsg t, std::int64_t ms) {
  t.timeout_ms = ms;
  return t;
}

proto::TaskMsg with_retries(proto::TaskMsg t, int n) {
  t.max_retries = n;
  return t;
}

proto::TaskMsg as_ack(proto::TaskMsg t) {
  t.reply = proto::ReplyMode::ack;
  return t;
}

proto::ResultMsg success(std::string id, std::uint32_t attempt, std::string result = R"({"ok":true})") {
  proto::ResultMsg r;
  r.task_id = std::move(id);
  r.ok = true;
  r.result = std::move(result);
  r.attempt = attempt;
  return r;
}

std::vector<std::string> ids_of(const std::vector<proto::TaskMsg>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t.task_id);
  return out;
}

std::vector<std::string> ids_of(const std::vector<proto::ResultMsg>& results) {
  std::vector<std::string> out;
  for (const auto& r : results) out.push_back(r.task_id);
  return out;
}

using Ids = std::vector<std::string>;

struct Harness {
  explicit Harness(DispatcherOptions options = {}) : d(std::move(options), sink) {}

  RecordingSink sink;  // before d: d keeps a reference
  Dispatcher d;
  TimePoint now = kT0;

  std::optional<std::string> submit(ConnId client, proto::TaskMsg t) { return d.submit(client, std::move(t), now); }

  const WorkerInfo& add_worker(ConnId conn, int threads = 1, std::optional<int> prefetch = 0,
                               std::vector<std::string> types = {}) {
    proto::WorkerRegisterMsg reg;
    reg.threads = threads;
    reg.prefetch = prefetch;
    reg.task_types = std::move(types);
    return d.add_worker(conn, reg, now);
  }

  /// The worker reports success for the last TASK it was sent with this id.
  void complete(ConnId worker, const std::string& id) {
    std::uint32_t attempt = 0;
    for (const auto& t : sink.tasks_to(worker)) {
      if (t.task_id == id) attempt = t.attempt;
    }
    ASSERT_NE(attempt, 0u) << worker << " was never sent " << id;
    d.on_result(worker, success(id, attempt));
  }

  std::size_t in_flight(ConnId worker) const {
    for (const WorkerInfo* w : d.workers()) {
      if (w->conn == worker) return w->in_flight.size();
    }
    return 0;
  }
};

// ---- waiting and dispatching ---------------------------------------------------------

TEST(Dispatcher, SubmitReturnsTheTaskIdAndSendsNothingYet) {
  Harness h;
  EXPECT_EQ(h.submit(kClient, task("abc123")), std::optional<std::string>("abc123"));
  EXPECT_TRUE(h.sink.tasks.empty());
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_TRUE(h.sink.errors.empty());
  EXPECT_TRUE(h.sink.accepted.empty());
  EXPECT_EQ(h.d.pending_count(), 1u);
  EXPECT_EQ(h.d.queued_count(), 1u);
  EXPECT_EQ(h.d.counters().accepted, 1u);
}

TEST(Dispatcher, TasksWaitWithNoWorkersAndAreDispatchedOnRegisterPlusDispatch) {
  Harness h;
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(h.submit(kClient, task(id)));
  h.d.dispatch(h.now);
  EXPECT_TRUE(h.sink.tasks.empty());
  EXPECT_EQ(h.d.queued_count(), 3u);

  h.add_worker(kW1, 4, 0);
  EXPECT_TRUE(h.sink.tasks.empty()) << "registering alone dispatches nothing";
  h.d.dispatch(h.now);
  const auto sent = h.sink.tasks_to(kW1);
  EXPECT_EQ(ids_of(sent), (Ids{"a", "b", "c"}));
  for (const auto& t : sent) {
    EXPECT_EQ(t.attempt, 1u);
    EXPECT_EQ(t.task_type, "hash");
    EXPECT_EQ(t.task_data, R"({"text":"x"})");
  }
  EXPECT_EQ(h.d.queued_count(), 0u);
  EXPECT_EQ(h.d.running_count(), 3u);
  EXPECT_EQ(h.d.pending_count(), 3u);
}

TEST(Dispatcher, WorkersGetIdsInRegistrationOrder) {
  Harness h;
  EXPECT_EQ(h.add_worker(kW2).id, "worker_1");
  EXPECT_EQ(h.add_worker(kW1).id, "worker_2");
  h.now += 1ms;
  EXPECT_EQ(h.add_worker(kW3).id, "worker_3");
  EXPECT_TRUE(h.d.is_worker(kW1));
  EXPECT_FALSE(h.d.is_worker(kClient));
}

TEST(Dispatcher, WorkersListsThemInRegistrationOrder) {
  Harness h;
  h.add_worker(kW3);
  h.now += 1ms;
  h.add_worker(kW1);
  h.now += 1ms;
  h.add_worker(kW2);
  std::vector<std::string> ids;
  for (const WorkerInfo* w : h.d.workers()) ids.push_back(w->id);
  EXPECT_EQ(ids, (Ids{"worker_1", "worker_2", "worker_3"}));
}

// Two workers registered at the same instant still come out in registration order (not
// by connection id).
TEST(Dispatcher, WorkersRegisteredAtTheSameInstantKeepRegistrationOrder) {
  Harness h;
  h.add_worker(kW2);
  h.add_worker(kW1);
  const auto workers = h.d.workers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0]->id, "worker_1");
  EXPECT_EQ(workers[1]->id, "worker_2");
}

TEST(Dispatcher, ServerMadeIdsForEmptyTaskIdsAreUnique) {
  Harness h;
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const auto id = h.submit(kClient, task(""));
    ASSERT_TRUE(id);
    EXPECT_FALSE(id->empty());
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_TRUE(h.sink.errors.empty());
}

TEST(Dispatcher, ServerMadeIdsSkipIdsAClientAlreadyUses) {
  DispatcherOptions o;
  o.id_prefix = "t";
  Harness h(o);
  ASSERT_TRUE(h.submit(kClient, task("t-1")));
  ASSERT_TRUE(h.submit(kClient, task("t-2")));
  EXPECT_EQ(h.submit(kClient, task("")), std::optional<std::string>("t-3"));
  EXPECT_TRUE(h.sink.errors.empty());
}

TEST(Dispatcher, ServerMadeIdIsWhatTheWorkerAndTheClientSee) {
  Harness h;
  const auto id = h.submit(kClient, task(""));
  ASSERT_TRUE(id);
  h.add_worker(kW1);
  h.d.dispatch(h.now);
  ASSERT_EQ(h.sink.tasks_to(kW1).size(), 1u);
  EXPECT_EQ(h.sink.tasks_to(kW1)[0].task_id, *id);
  h.complete(kW1, *id);
  ASSERT_EQ(h.sink.results_to(kClient).size(), 1u);
  EXPECT_EQ(h.sink.results_to(kClient)[0].task_id, *id);
}

// ---- round-robin, capacity, priority -----------------------------------------------------

TEST(DispatcherFairness, ThreeWorkersCompletingInOrderEachGetAHundredOfThreeHundredTasks) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  h.add_worker(kW2, 1, 0);
  h.add_worker(kW3, 1, 0);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  std::size_t done = 0;
  h.d.dispatch(h.now);
  while (done < h.sink.tasks.size()) {
    const std::size_t sent = h.sink.tasks.size();
    for (; done < sent; ++done) {
      const auto& s = h.sink.tasks[done];
      h.d.on_result(s.conn, success(s.msg.task_id, s.msg.attempt));
    }
    h.d.dispatch(h.now);
  }
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 100u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 100u);
  EXPECT_EQ(h.sink.tasks_to(kW3).size(), 100u);
  ASSERT_GE(h.sink.tasks.size(), 6u);
  const ConnId expected[] = {kW1, kW2, kW3, kW1, kW2, kW3};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(h.sink.tasks[i].conn, expected[i]) << i;
  EXPECT_EQ(h.sink.results_to(kClient).size(), 300u);
  EXPECT_EQ(h.d.pending_count(), 0u);
  for (const WorkerInfo* w : h.d.workers()) EXPECT_EQ(w->completed, 100u) << w->id;
}

TEST(DispatcherFairness, ABurstIsSpreadOverTheWorkersBeforeAnyIsFilled) {
  Harness h;
  h.add_worker(kW1, 2, 2);
  h.add_worker(kW2, 2, 2);
  h.add_worker(kW3, 2, 2);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 2u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 2u);
  EXPECT_EQ(h.sink.tasks_to(kW3).size(), 2u);
}

TEST(DispatcherFairness, TheNextRoundStartsAfterTheLastWorkerServed) {
  Harness h;
  h.add_worker(kW1, 4, 0);
  h.add_worker(kW2, 4, 0);
  h.add_worker(kW3, 4, 0);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  ASSERT_TRUE(h.submit(kClient, task("b")));
  h.d.dispatch(h.now);
  ASSERT_TRUE(h.submit(kClient, task("c")));
  h.d.dispatch(h.now);
  ASSERT_TRUE(h.submit(kClient, task("d")));
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"a", "d"}));
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW2)), (Ids{"b"}));
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW3)), (Ids{"c"}));
}

TEST(DispatcherCapacity, CapacityIsThreadsPlusPrefetch) {
  Harness h;
  EXPECT_EQ(h.add_worker(kW1, 2, 3).capacity, 5);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 5u);
  EXPECT_EQ(h.in_flight(kW1), 5u);
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 5u) << "a full worker gets nothing more";
  h.complete(kW1, "t0");
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 6u);
  EXPECT_EQ(h.in_flight(kW1), 5u);
}

TEST(DispatcherCapacity, WithoutADeclaredPrefetchTheWindowFollowsTaskDurations) {
  Harness h;
  const WorkerInfo& w = h.add_worker(kW1, 3, std::nullopt);
  EXPECT_EQ(w.capacity, 99) << "33 x threads at most";
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 9u) << "3 x threads before anything is known";

  // Tiny tasks (10 us each): the worker gets up to its capacity, to stream them.
  auto finish_all = [&](double seconds) {
    std::vector<proto::TaskMsg> out;
    for (const auto& t : h.sink.tasks_to(kW1)) out.push_back(t);
    for (const auto& t : out) {
      proto::ResultMsg r = success(t.task_id, t.attempt);
      r.processing_time = seconds;
      h.d.on_result(kW1, r);  // stale repeats are ignored
    }
    h.d.dispatch(h.now);
  };
  finish_all(0.00001);
  EXPECT_EQ(h.in_flight(kW1), 99u);
  // Long tasks (50 ms): one queued per thread, the rest stays with the server.
  for (int i = 0; i < 30; ++i) finish_all(0.05);
  EXPECT_EQ(h.in_flight(kW1), 6u);
}

/// Adaptive 4-thread workers (capacity 132) shown to run tiny tasks: each gets a task, and
/// reports it done in 10 us, so that its window grows to its capacity.
void warm_up_tiny(Harness& h, std::initializer_list<ConnId> workers) {
  for (const ConnId w : workers) h.add_worker(w, 4, std::nullopt);
  for (std::size_t i = 0; i < workers.size(); ++i) ASSERT_TRUE(h.submit(kClient, task("warm" + std::to_string(i))));
  h.d.dispatch(h.now);
  for (const auto& t : std::vector<Sent<proto::TaskMsg>>(h.sink.tasks)) {
    proto::ResultMsg r = success(t.msg.task_id, t.msg.attempt);
    r.processing_time = 0.00001;
    h.d.on_result(t.conn, r);
  }
  for (const WorkerInfo* w : h.d.workers()) ASSERT_EQ(w->window, 132) << w->id;
  h.sink.tasks.clear();
}

TEST(DispatcherTinyTasks, WorkersRunningTinyTasksAreFilledInRegistrationOrder) {
  Harness h;
  warm_up_tiny(h, {kW1, kW2, kW3});
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 132u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 68u);
  EXPECT_EQ(h.sink.tasks_to(kW3).size(), 0u) << "a load two workers hold leaves the third asleep";
  EXPECT_EQ(h.sink.tasks_to(kW1).front().task_id, "t0") << "in queue order";
}

TEST(DispatcherTinyTasks, SlotsFreedOnTheFirstWorkerAreFilledBeforeTheNextOne) {
  Harness h;
  warm_up_tiny(h, {kW1, kW2, kW3});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(h.submit(kClient, task("a" + std::to_string(i))));
  h.d.dispatch(h.now);
  ASSERT_EQ(h.sink.tasks_to(kW1).size(), 10u);
  for (int i = 0; i < 5; ++i) h.complete(kW1, "a" + std::to_string(i));
  // Round-robin would hand these to worker 2 (the round after worker 1); packing keeps
  // them on the worker that is already awake.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(h.submit(kClient, task("b" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 30u);
  EXPECT_EQ(h.in_flight(kW1), 25u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 0u);
  EXPECT_EQ(h.sink.tasks_to(kW3).size(), 0u);
}

TEST(DispatcherTinyTasks, WhatTheFullTinyTaskWorkersCannotTakeGoesRoundRobin) {
  Harness h;
  warm_up_tiny(h, {kW1});
  h.add_worker(kW2, 1, 0, {"hash"});
  h.add_worker(kW3, 1, 0, {"hash"});
  // kW1 is filled first; what it has no room for goes round-robin.
  for (int i = 0; i < 134; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 132u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 1u);
  EXPECT_EQ(h.sink.tasks_to(kW3).size(), 1u);
}

TEST(DispatcherTinyTasks, TasksOfATypeNotKnownToBeTinyAreSpreadEvenOverTinyTaskWorkers) {
  Harness h;
  warm_up_tiny(h, {kW1, kW2, kW3});  // "hash" is known tiny, "compute" is not known
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(h.submit(kClient, task("c" + std::to_string(i), "compute")));
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"c0", "c3"}));
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW2)), (Ids{"c1", "c4"}));
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW3)), (Ids{"c2", "c5"}));
}

TEST(DispatcherTinyTasks, ATypeWhoseResultsShowItLongIsNoLongerPacked) {
  Harness h;
  warm_up_tiny(h, {kW1, kW2});
  h.add_worker(kW3, 1, 0);
  // kW1 and kW2 are full; meanwhile kW3 reports hash tasks of 50 ms, one at a time.
  for (int i = 0; i < 264; ++i) ASSERT_TRUE(h.submit(kClient, task("fill" + std::to_string(i))));
  h.d.dispatch(h.now);
  ASSERT_EQ(h.in_flight(kW1) + h.in_flight(kW2), 264u);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(h.submit(kClient, task("slow" + std::to_string(i))));
    h.d.dispatch(h.now);
    const auto& sent = h.sink.tasks.back();
    ASSERT_EQ(sent.conn, kW3);
    proto::ResultMsg r = success(sent.msg.task_id, sent.msg.attempt);
    r.processing_time = 0.05;
    h.d.on_result(kW3, r);
  }
  // kW1 and kW2 finish (no processing_time: their windows stay open).
  for (int i = 0; i < 264; ++i) {
    const std::string id = "fill" + std::to_string(i);
    h.complete(i < 132 ? kW1 : kW2, id);
  }
  h.sink.tasks.clear();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"t0", "t3"})) << "round-robin, not packed";
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW2)), (Ids{"t1"}));
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW3)), (Ids{"t2"}));
}

TEST(DispatcherTinyTasks, TheDurationsOfAtMost1024TypesAreLearnt) {
  Harness h;
  warm_up_tiny(h, {kW1, kW2});  // "hash": the first type learnt
  auto run_once = [&](const std::string& type) {
    ASSERT_TRUE(h.submit(kClient, task(type + "-task", type)));
    h.d.dispatch(h.now);
    const auto& sent = h.sink.tasks.back();
    ASSERT_EQ(sent.msg.task_id, type + "-task");
    proto::ResultMsg r = success(sent.msg.task_id, sent.msg.attempt);
    r.processing_time = 0.00001;
    h.d.on_result(sent.conn, r);
  };
  for (int i = 0; i < 1023; ++i) run_once("type" + std::to_string(i));
  run_once("late");  // one type too many: not learnt, so never packed
  h.sink.tasks.clear();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(h.submit(kClient, task("e" + std::to_string(i), "type7")));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 4u) << "a learnt tiny type is packed";
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(h.submit(kClient, task("l" + std::to_string(i), "late")));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 6u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 2u);
}

TEST(DispatcherTinyTasks, AWindowTinyTasksOpenedTakesNoMoreOfAnUnknownTypeThanAFreshWorker) {
  // Tiny tasks opened the windows to 132; a burst of an unknown type must not be hoarded
  // by the first workers (each would queue 66 behind its 4 threads): each takes what a
  // fresh worker would (3 x threads), and the rest waits in the server for free slots.
  Harness h;
  warm_up_tiny(h, {kW1, kW2});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(h.submit(kClient, task("c" + std::to_string(i), "compute")));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 12u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 12u);
  EXPECT_EQ(h.d.queued_count(), 76u);
  // A result frees one such slot: the next one goes out.
  h.complete(kW1, "c0");
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 13u);
  EXPECT_EQ(h.d.queued_count(), 75u);
}

TEST(DispatcherTinyTasks, TinyTasksGoPastLongerOnesThatWaitForASlot) {
  Harness h;
  warm_up_tiny(h, {kW1});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(h.submit(kClient, task("c" + std::to_string(i), "compute")));
  h.d.dispatch(h.now);
  ASSERT_EQ(h.in_flight(kW1), 12u);
  // 8 compute tasks wait for a slot at the head of the queue; the tiny ones behind them
  // fill the rest of the window meanwhile.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.in_flight(kW1), 112u);
  EXPECT_EQ(h.d.queued_count(), 8u);
  h.complete(kW1, "c0");
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).back().task_id, "c12") << "a freed slot goes to the next compute task";
  EXPECT_EQ(h.d.queued_count(), 7u);
}

TEST(DispatcherTinyTasks, ALongerTaskWaitingForASlotDoesNotStopThePacking) {
  Harness h;
  warm_up_tiny(h, {kW1, kW2});
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(h.submit(kClient, task("c" + std::to_string(i), "compute")));
  h.d.dispatch(h.now);
  ASSERT_EQ(h.in_flight(kW1), 12u);
  ASSERT_EQ(h.in_flight(kW2), 12u);
  h.sink.tasks.clear();
  // 6 compute tasks wait at the head of the queue for a slot; the tiny ones behind them
  // are packed onto the first worker, as without them (not one per worker and step).
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 100u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 0u);
  EXPECT_EQ(h.d.queued_count(), 6u);
}

TEST(DispatcherTinyTasks, ALongTypeGetsTheWindowItsDurationCallsFor) {
  // "compute" is known to take 20 ms; tiny tasks then open the worker's window again. A
  // burst of compute gets 8 slots on a 4-thread worker (threads + 1 queued per thread),
  // not the 132 the tiny ones opened.
  Harness h;
  warm_up_tiny(h, {kW1});
  auto run_one = [&](const std::string& id, const std::string& type, double seconds) {
    ASSERT_TRUE(h.submit(kClient, task(id, type)));
    h.d.dispatch(h.now);
    proto::ResultMsg r = success(id, 1);
    r.processing_time = seconds;
    h.d.on_result(kW1, r);
  };
  run_one("first", "compute", 0.02);
  for (int i = 0; i < 60; ++i) run_one("t" + std::to_string(i), "hash", 0.00001);
  ASSERT_EQ(h.d.workers().front()->window, 132);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(h.submit(kClient, task("c" + std::to_string(i), "compute")));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.in_flight(kW1), 8u);
}

TEST(DispatcherTinyTasks, ADrainingTinyTaskWorkerGetsNothing) {
  Harness h;
  warm_up_tiny(h, {kW1, kW2});
  ASSERT_NE(h.d.worker_draining(kW1), nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 0u);
  EXPECT_EQ(h.sink.tasks_to(kW2).size(), 5u);
}

TEST(DispatcherCapacity, ADeclaredPrefetchIsKeptWhateverTheDurations) {
  Harness h;
  EXPECT_EQ(h.add_worker(kW1, 2, 1).capacity, 3);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.dispatch(h.now);
  for (const auto& t : std::vector<proto::TaskMsg>(h.sink.tasks_to(kW1))) {
    proto::ResultMsg r = success(t.task_id, t.attempt);
    r.processing_time = 0.000001;
    h.d.on_result(kW1, r);
  }
  h.d.dispatch(h.now);
  EXPECT_EQ(h.in_flight(kW1), 3u);
}

TEST(DispatcherCapacity, TheServersDefaultPrefetchAppliesWhenTheWorkerSaysNothing) {
  DispatcherOptions o;
  o.default_prefetch = 1;
  Harness h(o);
  EXPECT_EQ(h.add_worker(kW1, 2, std::nullopt).capacity, 3);
  EXPECT_EQ(h.add_worker(kW2, 2, 0).capacity, 2) << "the worker's own prefetch wins";
}

TEST(DispatcherCapacity, NeverMoreInFlightToAWorkerThanItsCapacity) {
  Harness h;
  h.add_worker(kW1, 2, 1);
  h.add_worker(kW2, 1, 0);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  std::size_t done = 0;
  h.d.dispatch(h.now);
  while (done < h.sink.tasks.size()) {
    EXPECT_LE(h.in_flight(kW1), 3u);
    EXPECT_LE(h.in_flight(kW2), 1u);
    // Complete one at a time, dispatching after each.
    const auto& s = h.sink.tasks[done++];
    h.d.on_result(s.conn, success(s.msg.task_id, s.msg.attempt));
    h.d.dispatch(h.now);
  }
  EXPECT_EQ(h.sink.results_to(kClient).size(), 200u);
}

TEST(DispatcherPriority, HigherPriorityFirstThenFifo) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, task("a", "hash", 0)));
  ASSERT_TRUE(h.submit(kClient, task("b", "hash", 5)));
  ASSERT_TRUE(h.submit(kClient, task("c", "hash", 0)));
  ASSERT_TRUE(h.submit(kClient, task("d", "hash", 5)));
  ASSERT_TRUE(h.submit(kClient, task("e", "hash", -1)));
  h.add_worker(kW1, 1, 0);
  h.d.dispatch(h.now);
  for (const char* id : {"b", "d", "a", "c", "e"}) {
    ASSERT_FALSE(h.sink.tasks.empty());
    EXPECT_EQ(h.sink.tasks.back().msg.task_id, id);
    h.complete(kW1, id);
    h.d.dispatch(h.now);
  }
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"b", "d", "a", "c", "e"}));
}

TEST(DispatcherPriority, ALaterHigherPriorityTaskOvertakesQueuedOnes) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  ASSERT_TRUE(h.submit(kClient, task("running")));
  h.d.dispatch(h.now);
  ASSERT_TRUE(h.submit(kClient, task("low1")));
  ASSERT_TRUE(h.submit(kClient, task("low2")));
  ASSERT_TRUE(h.submit(kClient, task("urgent", "hash", 10)));
  h.complete(kW1, "running");
  h.d.dispatch(h.now);
  EXPECT_EQ(h.sink.tasks.back().msg.task_id, "urgent");
}

// ---- results: to whom, how many times -------------------------------------------------

TEST(DispatcherResults, ResultGoesOnlyToTheSubmittingClientExactlyOnce) {
  Harness h;
  h.add_worker(kW1, 2, 0);
  ASSERT_TRUE(h.submit(kClient, task("mine")));
  ASSERT_TRUE(h.submit(kOtherClient, task("theirs")));
  h.d.dispatch(h.now);
  proto::ResultMsg r = success("mine", 1, R"({"sequence":[0,1,218922995834555169026]})");
  r.worker_id = "whatever the worker says";
  r.processing_time = 0.25;
  h.d.on_result(kW1, r);
  ASSERT_EQ(h.sink.results.size(), 1u);
  EXPECT_EQ(h.sink.results[0].conn, kClient);
  const proto::ResultMsg& got = h.sink.results[0].msg;
  EXPECT_EQ(got.task_id, "mine");
  EXPECT_TRUE(got.ok);
  EXPECT_EQ(got.result, R"({"sequence":[0,1,218922995834555169026]})");
  EXPECT_EQ(got.worker_id, "worker_1");
  EXPECT_EQ(got.processing_time, std::optional<double>(0.25));
  EXPECT_EQ(got.attempt, 0u) << "the attempt is between server and worker";

  // The same result again is stale: nothing more reaches anyone.
  h.d.on_result(kW1, r);
  EXPECT_EQ(h.sink.results.size(), 1u);
  EXPECT_EQ(h.d.counters().stale_results, 1u);

  h.complete(kW1, "theirs");
  ASSERT_EQ(h.sink.results.size(), 2u);
  EXPECT_EQ(h.sink.results[1].conn, kOtherClient);
  EXPECT_EQ(h.sink.results[1].msg.task_id, "theirs");
  EXPECT_EQ(h.d.pending_count(), 0u);
  EXPECT_EQ(h.d.running_count(), 0u);
}

TEST(DispatcherResults, ATaskErrorIsForwardedAsAnErrorResult) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  proto::ResultMsg r;
  r.task_id = "a";
  r.ok = false;
  r.error_code = ErrorCode::invalid_task_data;
  r.error_message = "'text' must be a string";
  r.attempt = 1;
  h.d.on_result(kW1, r);
  const auto results = h.sink.results_to(kClient);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].error_code, ErrorCode::invalid_task_data);
  EXPECT_EQ(results[0].error_message, "'text' must be a string");
  EXPECT_EQ(h.d.counters().failed, 1u);
  EXPECT_EQ(h.d.workers()[0]->failed, 1u);
}

TEST(DispatcherResults, DuplicateTaskIdWhilePendingIsRefused) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, task("a")));
  EXPECT_EQ(h.submit(kClient, task("a")), std::nullopt);
  proto::TaskMsg other = task("a");
  other.task_data = R"({"text":"other"})";
  EXPECT_EQ(h.submit(kOtherClient, other), std::nullopt);
  ASSERT_EQ(h.sink.errors_to(kClient).size(), 1u);
  EXPECT_EQ(h.sink.errors_to(kClient)[0].code, ErrorCode::duplicate_task_id);
  EXPECT_EQ(h.sink.errors_to(kClient)[0].task_id, "a");
  ASSERT_EQ(h.sink.errors_to(kOtherClient).size(), 1u);
  EXPECT_EQ(h.sink.errors_to(kOtherClient)[0].code, ErrorCode::duplicate_task_id);
  EXPECT_EQ(h.d.pending_count(), 1u);
  EXPECT_EQ(h.d.counters().rejected, 2u);
  EXPECT_EQ(h.d.counters().accepted, 1u);

  // Still refused while it runs; the original is undisturbed.
  h.add_worker(kW1);
  h.d.dispatch(h.now);
  EXPECT_EQ(h.submit(kClient, task("a")), std::nullopt);
  EXPECT_EQ(h.sink.errors_to(kClient).size(), 2u);
  h.complete(kW1, "a");
  EXPECT_EQ(h.sink.results_to(kClient).size(), 1u);
  EXPECT_TRUE(h.sink.results_to(kOtherClient).empty());
}

TEST(DispatcherResults, TheSamePendingTaskFromAnotherConnectionIsAttachedToIt) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.client_gone(kClient);  // a queued non-async task goes with its client...
  ASSERT_TRUE(h.submit(kClient + 100, as_ack(task("b"))));
  h.d.client_gone(kClient + 100);  // ...an async one stays
  EXPECT_EQ(h.submit(kOtherClient, as_ack(task("b"))), std::optional<std::string>("b"));
  EXPECT_EQ(h.d.counters().attached, 1u);
  EXPECT_EQ(h.d.counters().accepted, 2u);
  h.add_worker(kW1);
  h.d.dispatch(h.now);
  h.complete(kW1, "b");
  ASSERT_EQ(h.sink.results_to(kOtherClient).size(), 1u);
  EXPECT_EQ(h.sink.results_to(kOtherClient)[0].task_id, "b");
}

TEST(DispatcherResults, ATaskIdMayBeReusedAfterItsTaskFinished) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.complete(kW1, "a");
  EXPECT_EQ(h.submit(kClient, task("a")), std::optional<std::string>("a"));
  EXPECT_TRUE(h.sink.errors.empty());
  h.d.dispatch(h.now);
  ASSERT_EQ(h.sink.tasks_to(kW1).size(), 2u);
  EXPECT_EQ(h.sink.tasks_to(kW1)[1].attempt, 1u) << "a new task starts at attempt 1";
  h.complete(kW1, "a");
  EXPECT_EQ(h.sink.results_to(kClient).size(), 2u);
}

TEST(DispatcherResults, QueueFullAtMaxQueued) {
  DispatcherOptions o;
  o.max_queued = 2;
  Harness h(o);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  ASSERT_TRUE(h.submit(kClient, task("b")));
  EXPECT_EQ(h.submit(kClient, task("c")), std::nullopt);
  ASSERT_EQ(h.sink.errors_to(kClient).size(), 1u);
  EXPECT_EQ(h.sink.errors_to(kClient)[0].code, ErrorCode::queue_full);
  EXPECT_EQ(h.sink.errors_to(kClient)[0].task_id, "c");
  EXPECT_EQ(h.d.pending_count(), 2u);
  // Tasks out on a worker no longer count against the queue.
  h.add_worker(kW1, 1, 0);
  h.d.dispatch(h.now);
  EXPECT_EQ(h.submit(kClient, task("c")), std::optional<std::string>("c"));
}

// ---- lost workers -------------------------------------------------------------------------

TEST(DispatcherWorkerLoss, ItsTasksGoBackToTheFrontAndRunOnAnotherWorker) {
  Harness h;
  h.add_worker(kW1, 2, 0);
  for (const char* id : {"a", "b", "c", "d"}) ASSERT_TRUE(h.submit(kClient, task(id)));
  h.d.dispatch(h.now);
  ASSERT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"a", "b"}));
  h.add_worker(kW2, 4, 0);
  h.d.worker_gone(kW1);
  EXPECT_FALSE(h.d.is_worker(kW1));
  EXPECT_TRUE(h.sink.results.empty()) << "a lost worker's tasks are not answered";
  EXPECT_EQ(h.d.queued_count(), 4u);
  EXPECT_EQ(h.d.running_count(), 0u);
  EXPECT_EQ(h.d.counters().requeued, 2u);

  h.d.dispatch(h.now);
  const auto sent = h.sink.tasks_to(kW2);
  EXPECT_EQ(ids_of(sent), (Ids{"a", "b", "c", "d"})) << "requeued tasks first, in their order";
  EXPECT_EQ(sent[0].attempt, 2u);
  EXPECT_EQ(sent[1].attempt, 2u);
  EXPECT_EQ(sent[2].attempt, 1u);
  for (const char* id : {"a", "b", "c", "d"}) h.complete(kW2, id);
  EXPECT_EQ(ids_of(h.sink.results_to(kClient)), (Ids{"a", "b", "c", "d"}));
  EXPECT_EQ(h.d.pending_count(), 0u);
}

TEST(DispatcherWorkerLoss, RequeuedTasksStayBehindHigherPriorityOnes) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  ASSERT_TRUE(h.submit(kClient, task("lost")));
  h.d.dispatch(h.now);
  ASSERT_TRUE(h.submit(kClient, task("normal")));
  ASSERT_TRUE(h.submit(kClient, task("urgent", "hash", 3)));
  h.d.worker_gone(kW1);
  h.add_worker(kW2, 1, 0);
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    h.d.dispatch(h.now);
    order.push_back(h.sink.tasks.back().msg.task_id);
    h.complete(kW2, order.back());
  }
  EXPECT_EQ(order, (Ids{"urgent", "lost", "normal"}));
}

TEST(DispatcherWorkerLoss, AfterMaxRetriesLostRunsTheTaskFailsWithWorkerLost) {
  Harness h;  // default_max_retries = 3
  ASSERT_TRUE(h.submit(kClient, task("a")));
  ConnId worker = 500;
  for (int run = 1; run <= 4; ++run, ++worker) {
    h.add_worker(worker);
    h.d.dispatch(h.now);
    ASSERT_EQ(h.sink.tasks_to(worker).size(), 1u) << "run " << run;
    EXPECT_EQ(h.sink.tasks_to(worker)[0].attempt, static_cast<std::uint32_t>(run));
    EXPECT_TRUE(h.sink.results.empty()) << "run " << run;
    h.d.worker_gone(worker);
  }
  const auto results = h.sink.results_to(kClient);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].task_id, "a");
  EXPECT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].error_code, ErrorCode::worker_lost);
  EXPECT_EQ(h.d.pending_count(), 0u);
  EXPECT_EQ(h.d.queued_count(), 0u);
  EXPECT_EQ(h.d.counters().requeued, 3u);
  EXPECT_EQ(h.d.counters().failed, 1u);
}

TEST(DispatcherWorkerLoss, MaxRetriesOfTheTaskOverridesTheDefault) {
  for (int max_retries : {0, 1, 5}) {
    SCOPED_TRACE(max_retries);
    Harness h;
    ASSERT_TRUE(h.submit(kClient, with_retries(task("a"), max_retries)));
    ConnId worker = 500;
    for (int run = 1; run <= max_retries + 1; ++run, ++worker) {
      EXPECT_TRUE(h.sink.results.empty());
      h.add_worker(worker);
      h.d.dispatch(h.now);
      ASSERT_EQ(h.sink.tasks_to(worker).size(), 1u);
      h.d.worker_gone(worker);
    }
    ASSERT_EQ(h.sink.results_to(kClient).size(), 1u);
    EXPECT_EQ(h.sink.results_to(kClient)[0].error_code, ErrorCode::worker_lost);
  }
}

TEST(DispatcherWorkerLoss, TheServersDefaultMaxRetriesApplies) {
  DispatcherOptions o;
  o.default_max_retries = 1;
  Harness h(o);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  for (ConnId worker : {ConnId{500}, ConnId{501}}) {
    EXPECT_TRUE(h.sink.results.empty());
    h.add_worker(worker);
    h.d.dispatch(h.now);
    h.d.worker_gone(worker);
  }
  ASSERT_EQ(h.sink.results_to(kClient).size(), 1u);
  EXPECT_EQ(h.sink.results_to(kClient)[0].error_code, ErrorCode::worker_lost);
}

TEST(DispatcherWorkerLoss, WorkerGoneForAnUnknownConnectionChangesNothing) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.d.worker_gone(kClient);
  EXPECT_EQ(h.d.running_count(), 1u);
  EXPECT_TRUE(h.d.is_worker(kW1));
}

TEST(DispatcherWorkerLoss, TheRemainingWorkersStillShareTheWork) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  h.add_worker(kW2, 1, 0);
  h.add_worker(kW3, 1, 0);
  h.d.worker_gone(kW2);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  std::size_t done = 0;
  h.d.dispatch(h.now);
  while (done < h.sink.tasks.size()) {
    const std::size_t sent = h.sink.tasks.size();
    for (; done < sent; ++done) {
      const auto& s = h.sink.tasks[done];
      h.d.on_result(s.conn, success(s.msg.task_id, s.msg.attempt));
    }
    h.d.dispatch(h.now);
  }
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 5u);
  EXPECT_EQ(h.sink.tasks_to(kW3).size(), 5u);
  EXPECT_TRUE(h.sink.tasks_to(kW2).empty());
}

// ---- fencing ------------------------------------------------------------------------------

TEST(DispatcherFencing, AResultWithAWrongAttemptIsDroppedAsStale) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.d.on_result(kW1, success("a", 2));
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.counters().stale_results, 1u);
  EXPECT_EQ(h.d.running_count(), 1u) << "the attempt out is still out";
  h.d.on_result(kW1, success("a", 1));
  EXPECT_EQ(h.sink.results_to(kClient).size(), 1u);
}

TEST(DispatcherFencing, AResultFromAWorkerThatDoesNotHoldTheTaskIsDropped) {
  Harness h;
  h.add_worker(kW1);
  h.add_worker(kW2);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  ASSERT_EQ(h.sink.tasks_to(kW1).size(), 1u);
  h.d.on_result(kW2, success("a", 1));
  h.d.on_result(kW2, success("a", 0));
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.counters().stale_results, 2u);
  EXPECT_EQ(h.in_flight(kW1), 1u);
  EXPECT_EQ(h.in_flight(kW2), 0u);
  h.complete(kW1, "a");
  EXPECT_EQ(h.sink.results_to(kClient).size(), 1u);
}

TEST(DispatcherFencing, AnEarlierAttemptsResultIsDroppedAfterTheTaskMoved) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.d.worker_gone(kW1);
  h.add_worker(kW2);
  h.d.dispatch(h.now);
  ASSERT_EQ(h.sink.tasks_to(kW2).size(), 1u);
  ASSERT_EQ(h.sink.tasks_to(kW2)[0].attempt, 2u);
  h.d.on_result(kW2, success("a", 1));
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.counters().stale_results, 1u);
  h.d.on_result(kW2, success("a", 2));
  EXPECT_EQ(h.sink.results_to(kClient).size(), 1u);
}

TEST(DispatcherFencing, AResultWithoutAttemptFromTheHoldingWorkerIsAccepted) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.d.on_result(kW1, success("a", 0));
  ASSERT_EQ(h.sink.results_to(kClient).size(), 1u);
  EXPECT_EQ(h.d.counters().stale_results, 0u);
  EXPECT_EQ(h.d.pending_count(), 0u);
}

TEST(DispatcherFencing, AResultForAnUnknownTaskIsStale) {
  Harness h;
  h.add_worker(kW1);
  h.d.on_result(kW1, success("never-submitted", 1));
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.counters().stale_results, 1u);
}

TEST(DispatcherFencing, AResultForAQueuedTaskIsStale) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  ASSERT_TRUE(h.submit(kClient, task("running")));
  ASSERT_TRUE(h.submit(kClient, task("queued")));
  h.d.dispatch(h.now);
  h.d.on_result(kW1, success("queued", 0));
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.counters().stale_results, 1u);
  EXPECT_EQ(h.d.queued_count(), 1u);
}

TEST(DispatcherFencing, AResultFromAConnectionThatIsNoWorkerIsIgnored) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.d.on_result(kClient, success("a", 1));
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.running_count(), 1u);
}

// ---- timeouts -----------------------------------------------------------------------------

TEST(DispatcherTimeout, AQueuedTaskPastItsTimeoutFailsWithTimeout) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("a"), 1000)));
  h.d.tick(kT0 + 999ms);
  EXPECT_TRUE(h.sink.results.empty());
  h.d.tick(kT0 + 1000ms);
  const auto results = h.sink.results_to(kClient);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].task_id, "a");
  EXPECT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].error_code, ErrorCode::timeout);
  EXPECT_EQ(h.d.queued_count(), 0u);
  EXPECT_EQ(h.d.pending_count(), 0u);
  EXPECT_EQ(h.d.counters().failed, 1u);

  // A worker arriving later gets nothing, and nothing more is answered.
  h.add_worker(kW1);
  h.d.dispatch(kT0 + 2000ms);
  h.d.tick(kT0 + 5000ms);
  EXPECT_TRUE(h.sink.tasks.empty());
  EXPECT_EQ(h.sink.results.size(), 1u);
}

TEST(DispatcherTimeout, ARunningTaskPastItsTimeoutIsCancelledAndItsSlotStaysBusyUntilItReports) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("slow"), 1000)));
  ASSERT_TRUE(h.submit(kClient, task("next")));
  h.d.dispatch(h.now);
  ASSERT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"slow"}));

  h.d.tick(kT0 + 1000ms);
  const auto cancels = h.sink.cancels_to(kW1);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].task_id, "slow");
  EXPECT_EQ(cancels[0].attempt, 1u);
  const auto results = h.sink.results_to(kClient);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].task_id, "slow");
  EXPECT_EQ(results[0].error_code, ErrorCode::timeout);

  // The worker's thread may still be busy with it: no new task until it reports.
  h.d.dispatch(kT0 + 1001ms);
  EXPECT_EQ(h.sink.tasks_to(kW1).size(), 1u);
  EXPECT_EQ(h.d.running_count(), 1u);
  EXPECT_EQ(h.in_flight(kW1), 1u);

  // Its late result is dropped, the slot is freed.
  h.d.on_result(kW1, success("slow", 1));
  EXPECT_EQ(h.sink.results.size(), 1u) << "the client already had its one RESULT";
  EXPECT_EQ(h.d.running_count(), 0u);
  h.d.dispatch(kT0 + 1002ms);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"slow", "next"}));
  h.d.tick(kT0 + 10'000ms);
  EXPECT_EQ(h.sink.cancels.size(), 1u);
}

TEST(DispatcherTimeout, ATimedOutTasksIdStaysTakenUntilItsWorkerReports) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("slow"), 1000)));
  h.d.dispatch(h.now);
  h.d.tick(kT0 + 1000ms);
  EXPECT_EQ(h.d.pending_count(), 1u);
  h.d.on_result(kW1, success("slow", 1));
  EXPECT_EQ(h.d.pending_count(), 0u);
  h.now = kT0 + 1001ms;
  EXPECT_TRUE(h.submit(kClient, task("slow")));
}

TEST(DispatcherTimeout, ATimedOutTaskWhoseWorkerIsLostIsNotRunAgain) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("slow"), 1000)));
  h.d.dispatch(h.now);
  h.d.tick(kT0 + 1000ms);
  h.d.worker_gone(kW1);
  EXPECT_EQ(h.d.pending_count(), 0u);
  EXPECT_EQ(h.d.queued_count(), 0u);
  h.add_worker(kW2);
  h.d.dispatch(kT0 + 1001ms);
  EXPECT_TRUE(h.sink.tasks_to(kW2).empty());
  EXPECT_EQ(h.sink.results.size(), 1u);
}

TEST(DispatcherTimeout, ATaskThatFinishedInTimeIsNotTimedOut) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("a"), 1000)));
  h.d.dispatch(h.now);
  h.complete(kW1, "a");
  h.d.tick(kT0 + 5000ms);
  EXPECT_EQ(h.sink.results.size(), 1u);
  EXPECT_TRUE(h.sink.results[0].msg.ok);
  EXPECT_TRUE(h.sink.cancels.empty());
}

TEST(DispatcherTimeout, AnOldDeadlineDoesNotHitANewTaskWithTheSameId) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("a"), 1000)));
  h.d.dispatch(h.now);
  h.complete(kW1, "a");
  h.now = kT0 + 500ms;
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.tick(kT0 + 1000ms);
  EXPECT_EQ(h.sink.results.size(), 1u);
  EXPECT_EQ(h.d.pending_count(), 1u);
}

TEST(DispatcherTimeout, DeadlinesFireInTimeOrderWhateverTheSubmissionOrder) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("late"), 3000)));
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("early"), 1000)));
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("middle"), 2000)));
  ASSERT_TRUE(h.submit(kClient, task("never")));
  h.d.tick(kT0 + 1500ms);
  EXPECT_EQ(ids_of(h.sink.results_to(kClient)), (Ids{"early"}));
  h.d.tick(kT0 + 3000ms);
  EXPECT_EQ(ids_of(h.sink.results_to(kClient)), (Ids{"early", "middle", "late"}));
  EXPECT_EQ(h.d.pending_count(), 1u);
}

// ---- task types -------------------------------------------------------------------------

TEST(DispatcherTaskTypes, AWorkerGetsOnlyTheTypesItRuns) {
  Harness h;
  h.add_worker(kW1, 4, 0, {"hash"});
  h.add_worker(kW2, 4, 0, {"reverse", "fibonacci"});
  ASSERT_TRUE(h.submit(kClient, task("r1", "reverse")));
  ASSERT_TRUE(h.submit(kClient, task("h1", "hash")));
  ASSERT_TRUE(h.submit(kClient, task("f1", "fibonacci")));
  ASSERT_TRUE(h.submit(kClient, task("h2", "hash")));
  ASSERT_TRUE(h.submit(kClient, task("s1", "sleep")));
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"h1", "h2"}));
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW2)), (Ids{"r1", "f1"}));
  EXPECT_EQ(h.d.queued_count(), 1u) << "nobody runs sleep";
}

TEST(DispatcherTaskTypes, AQueuedTypeNobodyRunsDoesNotBlockTheOthers) {
  Harness h;
  h.add_worker(kW1, 1, 0, {"hash"});
  ASSERT_TRUE(h.submit(kClient, task("s1", "sleep", 9)));
  ASSERT_TRUE(h.submit(kClient, task("h1", "hash")));
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"h1"}));
}

TEST(DispatcherTaskTypes, AWorkerWithoutTypesRunsAnyType) {
  Harness h;
  h.add_worker(kW1, 4, 0);
  ASSERT_TRUE(h.submit(kClient, task("a", "anything")));
  ASSERT_TRUE(h.submit(kClient, task("b", "custom.type")));
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"a", "b"}));
}

TEST(DispatcherTaskTypes, ATypeNoConnectedWorkerRunsFailsAfterTheQueueTimeout) {
  DispatcherOptions o;
  o.queue_timeout = 5s;
  Harness h(o);
  h.add_worker(kW1, 1, 0, {"hash"});
  ASSERT_TRUE(h.submit(kClient, task("s", "sleep")));
  h.d.tick(kT0 + 1s);
  h.d.tick(kT0 + 4s);
  EXPECT_TRUE(h.sink.results.empty());
  h.d.tick(kT0 + 5s);
  const auto results = h.sink.results_to(kClient);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].task_id, "s");
  EXPECT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].error_code, ErrorCode::unknown_task_type);
  EXPECT_EQ(h.d.pending_count(), 0u);
}

TEST(DispatcherTaskTypes, WithNoWorkerAtAllTasksWaitPastTheQueueTimeout) {
  DispatcherOptions o;
  o.queue_timeout = 5s;
  Harness h(o);
  ASSERT_TRUE(h.submit(kClient, task("s", "sleep")));
  for (auto t = 1s; t <= 600s; t += 1s) h.d.tick(kT0 + t);
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.queued_count(), 1u);
}

TEST(DispatcherTaskTypes, ARunnableTypeWaitsPastTheQueueTimeoutWhileWorkersAreBusy) {
  DispatcherOptions o;
  o.queue_timeout = 5s;
  Harness h(o);
  h.add_worker(kW1, 1, 0, {"hash"});
  ASSERT_TRUE(h.submit(kClient, task("busy")));
  ASSERT_TRUE(h.submit(kClient, task("waiting")));
  h.d.dispatch(h.now);
  h.d.tick(kT0 + 60s);
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.d.queued_count(), 1u);
}

TEST(DispatcherTaskTypes, AWorkerForTheTypeArrivingInTimeRunsIt) {
  DispatcherOptions o;
  o.queue_timeout = 5s;
  Harness h(o);
  h.add_worker(kW1, 1, 0, {"hash"});
  ASSERT_TRUE(h.submit(kClient, task("s", "sleep")));
  h.d.tick(kT0 + 4s);
  h.now = kT0 + 4s;
  h.add_worker(kW2, 1, 0, {"sleep"});
  h.d.tick(kT0 + 6s);
  h.d.dispatch(kT0 + 6s);
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW2)), (Ids{"s"}));
}

// ---- clients that leave -----------------------------------------------------------------

TEST(DispatcherClientGone, ItsQueuedTasksAreDropped) {
  Harness h;
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(h.submit(kClient, task(id)));
  ASSERT_TRUE(h.submit(kOtherClient, task("other")));
  h.d.client_gone(kClient);
  EXPECT_EQ(h.d.pending_count(), 1u);
  EXPECT_EQ(h.d.queued_count(), 1u);
  h.add_worker(kW1, 8, 0);
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"other"}));
  h.complete(kW1, "other");
  EXPECT_EQ(h.sink.results.size(), 1u);
  EXPECT_EQ(h.sink.results[0].conn, kOtherClient);
}

TEST(DispatcherClientGone, PendingCountGoesBackToZero) {
  Harness h;
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(h.submit(kClient, task("t" + std::to_string(i))));
  h.d.client_gone(kClient);
  EXPECT_EQ(h.d.pending_count(), 0u);
  EXPECT_EQ(h.d.queued_count(), 0u);
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_TRUE(h.sink.cancels.empty());
}

TEST(DispatcherClientGone, ItsRunningTasksAreCancelledAndTheirResultsNotForwarded) {
  Harness h;
  h.add_worker(kW1, 2, 0);
  ASSERT_TRUE(h.submit(kClient, task("mine")));
  ASSERT_TRUE(h.submit(kOtherClient, task("theirs")));
  h.d.dispatch(h.now);
  h.d.client_gone(kClient);
  const auto cancels = h.sink.cancels_to(kW1);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].task_id, "mine");
  EXPECT_EQ(cancels[0].attempt, 1u);

  h.complete(kW1, "mine");
  EXPECT_TRUE(h.sink.results.empty());
  EXPECT_EQ(h.in_flight(kW1), 1u) << "the slot is freed by the late result";
  h.complete(kW1, "theirs");
  ASSERT_EQ(h.sink.results.size(), 1u);
  EXPECT_EQ(h.sink.results[0].conn, kOtherClient);
  EXPECT_EQ(h.d.pending_count(), 0u);
}

TEST(DispatcherClientGone, ARunningTaskOfAGoneClientIsForgottenIfItsWorkerIsLost) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.d.client_gone(kClient);
  h.d.worker_gone(kW1);
  EXPECT_EQ(h.d.pending_count(), 0u);
  EXPECT_EQ(h.d.queued_count(), 0u);
  EXPECT_EQ(h.d.counters().requeued, 0u);
}

TEST(DispatcherClientGone, UnknownClientsAreHarmless) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.client_gone(999);
  h.d.client_gone(kW1);
  EXPECT_EQ(h.d.pending_count(), 1u);
}

TEST(DispatcherClientGone, AckTaskIsAcceptedAndSurvivesItsClientWhileQueued) {
  Harness h;
  EXPECT_EQ(h.submit(kClient, as_ack(task("async"))), std::optional<std::string>("async"));
  ASSERT_EQ(h.sink.accepted.size(), 1u);
  EXPECT_EQ(h.sink.accepted[0].conn, kClient);
  EXPECT_EQ(h.sink.accepted[0].msg, "async");
  ASSERT_TRUE(h.submit(kClient, task("sync")));
  EXPECT_EQ(h.sink.accepted.size(), 1u) << "reply=result gets no ACCEPTED";

  h.d.client_gone(kClient);
  EXPECT_EQ(h.d.pending_count(), 1u);
  h.add_worker(kW1, 4, 0);
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"async"}));
  h.complete(kW1, "async");
  EXPECT_TRUE(h.sink.results.empty()) << "nobody is connected to take it";
  EXPECT_EQ(h.d.pending_count(), 0u);
}

TEST(DispatcherClientGone, AckTaskSurvivesALostWorkerAfterItsClientLeft) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, as_ack(task("async"))));
  h.d.client_gone(kClient);
  h.add_worker(kW1);
  h.d.dispatch(h.now);
  h.d.worker_gone(kW1);
  EXPECT_EQ(h.d.queued_count(), 1u);
  h.add_worker(kW2);
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW2)), (Ids{"async"}));
}

// An asynchronous (reply=ack) task outlives its submitter while running too: no CANCEL.
TEST(DispatcherClientGone, RunningAckTaskIsNotCancelledWhenItsClientLeaves) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, as_ack(task("async"))));
  h.d.dispatch(h.now);
  h.d.client_gone(kClient);
  EXPECT_TRUE(h.sink.cancels.empty());
}

// A task whose client left has already been sent its CANCEL; when its timeout passes,
// tick() sends no second one for the same attempt.
TEST(DispatcherClientGone, ARunningTaskOfAGoneClientIsCancelledOnce) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("a"), 1000)));
  h.d.dispatch(h.now);
  h.d.client_gone(kClient);
  h.d.tick(kT0 + 1000ms);
  EXPECT_EQ(h.sink.cancels.size(), 1u);
}

// ---- draining workers ---------------------------------------------------------------------

TEST(DispatcherDrain, ADrainingWorkerFinishesWhatItHoldsAndGetsNothingNew) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  h.add_worker(kW2, 1, 0);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(h.submit(kClient, task(id)));
  h.d.dispatch(h.now);
  ASSERT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"a"}));
  const WorkerInfo* w = h.d.worker_draining(kW1);
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->draining);
  h.complete(kW1, "a");
  EXPECT_EQ(h.sink.results_to(kClient).size(), 1u) << "its result still counts";
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"a"}));
  h.complete(kW2, "b");
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW2)), (Ids{"b", "c"}));
}

TEST(DispatcherDrain, DrainingAnUnknownConnectionGivesNull) {
  Harness h;
  EXPECT_EQ(h.d.worker_draining(kW1), nullptr);
}

// ---- liveness -------------------------------------------------------------------------------

TEST(DispatcherLiveness, SilentWorkersAreThoseNotSeenForLongerThanTheTimeout) {
  Harness h;
  h.add_worker(kW1);
  h.add_worker(kW2);
  h.add_worker(kW3);
  h.d.worker_seen(kW2, kT0 + 5s);
  h.d.worker_seen(kW3, kT0 + 2s);
  h.d.worker_seen(kClient, kT0 + 5s);  // not a worker: ignored
  auto silent = h.d.silent_workers(kT0 + 10s, 8s);
  EXPECT_EQ(silent, (std::vector<ConnId>{kW1})) << "kW3 was seen exactly 8 s ago: not yet silent";
  silent = h.d.silent_workers(kT0 + 10001ms, 8s);
  std::sort(silent.begin(), silent.end());
  EXPECT_EQ(silent, (std::vector<ConnId>{kW1, kW3}));
  EXPECT_TRUE(h.d.silent_workers(kT0 + 1s, 8s).empty());
}

// ---- shutdown --------------------------------------------------------------------------------

TEST(DispatcherShutdown, StopAcceptingAnswersQueuedTasksAndRefusesNewOnes) {
  Harness h;
  h.add_worker(kW1, 1, 0);
  ASSERT_TRUE(h.submit(kClient, task("running")));
  ASSERT_TRUE(h.submit(kClient, task("q1")));
  ASSERT_TRUE(h.submit(kOtherClient, task("q2")));
  h.d.dispatch(h.now);
  h.d.stop_accepting();
  ASSERT_EQ(h.sink.results.size(), 2u);
  EXPECT_EQ(h.sink.results[0].conn, kClient);
  EXPECT_EQ(h.sink.results[0].msg.task_id, "q1");
  EXPECT_EQ(h.sink.results[0].msg.error_code, ErrorCode::server_shutdown);
  EXPECT_EQ(h.sink.results[1].conn, kOtherClient);
  EXPECT_EQ(h.sink.results[1].msg.task_id, "q2");
  EXPECT_EQ(h.sink.results[1].msg.error_code, ErrorCode::server_shutdown);
  EXPECT_EQ(h.d.queued_count(), 0u);

  EXPECT_EQ(h.submit(kClient, task("late")), std::nullopt);
  ASSERT_EQ(h.sink.errors_to(kClient).size(), 1u);
  EXPECT_EQ(h.sink.errors_to(kClient)[0].code, ErrorCode::server_shutdown);
  EXPECT_EQ(h.sink.errors_to(kClient)[0].task_id, "late");

  // What is running finishes normally.
  h.complete(kW1, "running");
  ASSERT_EQ(h.sink.results.size(), 3u);
  EXPECT_TRUE(h.sink.results[2].msg.ok);
  EXPECT_EQ(h.d.pending_count(), 0u);
}

TEST(DispatcherShutdown, AWorkerLostDuringShutdownFailsItsTasksWithServerShutdown) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.d.stop_accepting();
  h.d.worker_gone(kW1);
  const auto results = h.sink.results_to(kClient);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error_code, ErrorCode::server_shutdown);
  EXPECT_EQ(h.d.pending_count(), 0u);
  EXPECT_EQ(h.d.queued_count(), 0u);
}

TEST(DispatcherShutdown, FailRunningAnswersEveryRunningTaskOnce) {
  Harness h;
  h.add_worker(kW1, 2, 0);
  h.add_worker(kW2, 1, 0);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(h.submit(kClient, task(id)));
  h.d.dispatch(h.now);
  h.d.stop_accepting();
  h.d.fail_running();
  auto results = h.sink.results_to(kClient);
  ASSERT_EQ(results.size(), 3u);
  std::set<std::string> ids;
  for (const auto& r : results) {
    EXPECT_EQ(r.error_code, ErrorCode::server_shutdown);
    ids.insert(r.task_id);
  }
  EXPECT_EQ(ids, (std::set<std::string>{"a", "b", "c"}));
  EXPECT_EQ(h.d.running_count(), 3u) << "the workers still hold them";

  h.d.fail_running();
  EXPECT_EQ(h.sink.results.size(), 3u) << "never a second RESULT";
  h.complete(kW1, "a");
  h.d.worker_gone(kW2);
  EXPECT_EQ(h.sink.results.size(), 3u);
  EXPECT_EQ(h.d.running_count(), 1u);
  h.complete(kW1, "c");
  EXPECT_EQ(h.d.running_count(), 0u);
  EXPECT_EQ(h.d.pending_count(), 0u);
}

// ---- counters --------------------------------------------------------------------------------

TEST(DispatcherCounters, CountAcceptedCompletedFailedRejectedRequeuedAndStale) {
  DispatcherOptions o;
  o.max_queued = 10;
  Harness h(o);
  h.add_worker(kW1, 2, 0);
  ASSERT_TRUE(h.submit(kClient, task("ok")));
  ASSERT_TRUE(h.submit(kClient, task("err")));
  ASSERT_TRUE(h.submit(kClient, with_timeout(task("late"), 100)));
  EXPECT_FALSE(h.submit(kClient, task("ok")));  // duplicate
  h.d.dispatch(h.now);
  h.complete(kW1, "ok");
  proto::ResultMsg e;
  e.task_id = "err";
  e.ok = false;
  e.error_code = ErrorCode::invalid_task_data;
  h.d.on_result(kW1, e);
  h.d.on_result(kW1, success("err", 1));  // stale
  h.d.dispatch(h.now);
  h.d.worker_gone(kW1);  // "late" goes back to the queue
  h.d.tick(kT0 + 100ms);  // ... and times out there

  const auto& c = h.d.counters();
  EXPECT_EQ(c.accepted, 3u);
  EXPECT_EQ(c.completed, 1u);
  EXPECT_EQ(c.failed, 2u);
  EXPECT_EQ(c.rejected, 1u);
  EXPECT_EQ(c.requeued, 1u);
  EXPECT_EQ(c.stale_results, 1u);
  EXPECT_EQ(h.sink.results_to(kClient).size(), 3u);
  EXPECT_EQ(h.d.pending_count(), 0u);
}

TEST(DispatcherCounters, WorkersCountTheirOwnCompletedAndFailedTasks) {
  Harness h;
  h.add_worker(kW1, 4, 0);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(h.submit(kClient, task(id)));
  h.d.dispatch(h.now);
  h.complete(kW1, "a");
  h.complete(kW1, "b");
  proto::ResultMsg e;
  e.task_id = "c";
  e.ok = false;
  h.d.on_result(kW1, e);
  const auto workers = h.d.workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0]->completed, 2u);
  EXPECT_EQ(workers[0]->failed, 1u);
  EXPECT_TRUE(workers[0]->in_flight.empty());
}

// ---- the store's operations ------------------------------------------------------------

std::vector<std::string> op_names(const store::WriteBatch& b) {
  std::vector<std::string> out;
  for (const auto& op : b.ops()) {
    std::visit(
        [&](const auto& o) {
          using O = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<O, store::WriteBatch::AddTask>) {
            out.push_back("add " + o.task.task_id);
          } else if constexpr (std::is_same_v<O, store::WriteBatch::Start>) {
            out.push_back("start " + o.task_id + " " + std::to_string(o.attempt));
          } else if constexpr (std::is_same_v<O, store::WriteBatch::Requeue>) {
            out.push_back("requeue " + o.task_id);
          } else if constexpr (std::is_same_v<O, store::WriteBatch::Finish>) {
            out.push_back("finish " + o.result.task_id);
          } else {
            out.push_back("drop " + o.task_id);
          }
        },
        op);
  }
  return out;
}

TEST(DispatcherStore, RecordsAddStartRequeueFinishAndDropInOrder) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  ASSERT_TRUE(h.submit(kClient, task("gone")));
  h.d.dispatch(h.now);
  h.d.worker_gone(kW1);
  h.add_worker(kW2);
  h.d.dispatch(h.now);
  h.d.client_gone(kOtherClient);
  h.complete(kW2, "a");
  h.d.client_gone(kClient);  // "gone" is queued, not async: dropped
  EXPECT_EQ(op_names(h.d.take_batch()),
            (Ids{"add a", "add gone", "start a 1", "requeue a", "start a 2", "finish a", "drop gone"}));
  EXPECT_TRUE(h.d.batch().empty());
  const auto c = h.d.store_counts();
  EXPECT_EQ(c, (store::StoreCounts{0, 0, 1}));
}

DispatcherOptions delayed_running_records() {
  DispatcherOptions o;
  o.running_record_delay = std::chrono::milliseconds(50);
  return o;
}

TEST(DispatcherStore, ARunningRecordWaitsForTheResultAndIsRecordedJustBeforeIt) {
  Harness h(delayed_running_records());
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"add a"}));
  EXPECT_EQ(h.d.waiting_starts(), 1u);
  h.now += std::chrono::milliseconds(49);
  h.d.tick(h.now);
  EXPECT_TRUE(h.d.batch().empty());
  h.complete(kW1, "a");
  // Next to each other, so that the store writes them as one.
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"start a 1", "finish a"}));
  EXPECT_EQ(h.d.waiting_starts(), 0u);
  h.now += std::chrono::milliseconds(10);
  h.d.tick(h.now);
  EXPECT_TRUE(h.d.batch().empty());
}

TEST(DispatcherStore, ARunningRecordIsRecordedOnItsOwnOnceItsDelayIsOver) {
  Harness h(delayed_running_records());
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("long")));
  h.d.dispatch(h.now);
  (void)h.d.take_batch();
  h.now += std::chrono::milliseconds(50);
  h.d.tick(h.now);
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"start long 1"}));
  EXPECT_EQ(h.d.waiting_starts(), 0u);
  h.complete(kW1, "long");
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"finish long"}));
}

TEST(DispatcherStore, AWaitingRunningRecordGoesBeforeARequeueAndTheNextAttemptWaitsAgain) {
  Harness h(delayed_running_records());
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  (void)h.d.take_batch();
  h.d.worker_gone(kW1);
  h.add_worker(kW2);
  h.d.dispatch(h.now);
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"start a 1", "requeue a"}));
  EXPECT_EQ(h.d.waiting_starts(), 1u);
  // The first attempt's turn comes first: it is recorded already; the second's follows.
  h.now += std::chrono::milliseconds(50);
  h.d.tick(h.now);
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"start a 2"}));
}

TEST(DispatcherStore, WaitingRunningRecordsAreAllRecordedOnRequest) {
  Harness h(delayed_running_records());
  h.add_worker(kW1, 2);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  ASSERT_TRUE(h.submit(kClient, task("b")));
  h.d.dispatch(h.now);
  (void)h.d.take_batch();
  h.d.record_waiting_starts();  // before the last write of a shutdown
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"start a 1", "start b 1"}));
  EXPECT_EQ(h.d.waiting_starts(), 0u);
}

TEST(DispatcherStore, TheFinishHoldsTheRESULTLineTheClientGot) {
  Harness h;
  h.add_worker(kW1);
  ASSERT_TRUE(h.submit(kClient, task("a")));
  h.d.dispatch(h.now);
  h.complete(kW1, "a");
  const auto batch = h.d.take_batch();
  const auto& fin = std::get<store::WriteBatch::Finish>(batch.ops().back());
  std::string line;
  proto::encode(line, h.sink.results_to(kClient).at(0));
  line.pop_back();
  EXPECT_EQ(fin.result.result_message_json, line);
}

TEST(DispatcherStore, RestoredTasksRunAgainAndAReSentResultOfTheCurrentAttemptIsTakenIn) {
  Harness h;
  store::TaskRecord running;
  running.task.task_id = "r";
  running.task.task_type = "hash";
  running.task.task_data_json = R"({"text":"x"})";
  running.task.attempt = 3;
  running.state = store::TaskState::running;
  store::TaskRecord queued = running;
  queued.task.task_id = "q";
  queued.task.attempt = 0;
  queued.state = store::TaskState::queued;
  h.d.set_store_counts({1, 1, 0});
  h.d.restore(running, h.now);
  h.d.restore(queued, h.now);
  EXPECT_EQ(h.d.queued_count(), 2u);
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"requeue r"}));
  EXPECT_EQ(h.d.store_counts(), (store::StoreCounts{2, 0, 0}));
  // A reconnected worker re-sends attempt 3 of "r": taken in without running it again.
  h.add_worker(kW1, 1, 0);
  h.d.on_result(kW1, success("r", 3));
  h.d.on_result(kW1, success("q", 0));  // never dispatched: stale
  EXPECT_EQ(h.d.counters().stale_results, 1u);
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"finish r"}));
  h.d.dispatch(h.now);
  EXPECT_EQ(ids_of(h.sink.tasks_to(kW1)), (Ids{"q"}));
}

TEST(DispatcherStore, StopAcceptingKeepsQueuedAsyncTasksInTheStore) {
  Harness h;
  ASSERT_TRUE(h.submit(kClient, as_ack(task("async"))));
  ASSERT_TRUE(h.submit(kClient, task("sync")));
  (void)h.d.take_batch();
  EXPECT_EQ(h.d.stop_accepting(), 1u);
  EXPECT_EQ(op_names(h.d.take_batch()), (Ids{"finish sync"}));
  ASSERT_EQ(h.sink.results_to(kClient).size(), 1u);
  EXPECT_EQ(h.sink.results_to(kClient)[0].task_id, "sync");
}

TEST(DispatcherStore, TextNoStoreCanHoldIsRefusedAsInvalidTask) {
  Harness h;
  proto::TaskMsg t = task("a");
  t.task_type = std::string("ha\0sh", 5);
  EXPECT_EQ(h.submit(kClient, t), std::nullopt);
  ASSERT_EQ(h.sink.errors_to(kClient).size(), 1u);
  EXPECT_EQ(h.sink.errors_to(kClient)[0].code, ErrorCode::invalid_task);
  EXPECT_TRUE(h.d.batch().empty());
}

}  // namespace
}  // namespace sd::server
