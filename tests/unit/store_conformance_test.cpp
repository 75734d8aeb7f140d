// The behaviour every TaskStore shares. Instantiated once per store, in
// memory_store_test.cpp, sqlite_store_test.cpp and postgres_store_test.cpp.
#include "../store/store_conformance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <random>

#include "store/memory_store.hpp"
#include "store/task_store.hpp"

namespace sd::store::testing {
namespace {

StoredTask make_task(const std::string& id, int priority = 0, std::int64_t created_at_ms = 1000) {
  StoredTask t;
  t.task_id = id;
  t.task_type = "hash";
  t.task_data_json = R"({"text":")" + id + R"("})";
  t.priority = priority;
  t.created_at_ms = created_at_ms;
  return t;
}

StoredResult make_result(const std::string& id, std::int64_t finished_at_ms,
                         const std::string& status = "success") {
  return StoredResult{
      id,
      R"({"type":"RESULT","task_id":")" + id + R"(","status":")" + status +
          R"(","result":{"hash":"ab"},"worker_id":"worker_1","processing_time":0.5})",
      finished_at_ms};
}

TaskRecord record(StoredTask task, TaskState state) { return TaskRecord{std::move(task), state}; }

std::vector<std::string> ids_of(const std::vector<TaskRecord>& records) {
  std::vector<std::string> ids;
  for (const auto& r : records) ids.push_back(r.task.task_id);
  return ids;
}

TEST_P(StoreConformance, EmptyStoreHoldsNothing) {
  EXPECT_EQ(store().counts(), StoreCounts{});
  EXPECT_TRUE(store().load_unfinished().empty());
  EXPECT_EQ(store().find_task("a"), std::nullopt);
  EXPECT_EQ(store().find_result("a"), std::nullopt);
  EXPECT_EQ(store().purge_results_before(INT64_MAX, 100), 0);
}

TEST_P(StoreConformance, AddedTaskIsQueuedWithEveryFieldIntact) {
  // Ids and data that would break naive quoting in SQL or in array literals.
  StoredTask plain = make_task("t1");
  StoredTask tricky;
  tricky.task_id = R"(he said "hi" \ {a,b} 'x' NULL ; DROP TABLE sd_tasks; --)";
  tricky.task_type = "reverse";
  tricky.task_data_json = R"({"text":"canción 😀 \"q\" \\ \n {},NULL)"
                          "\u0800\uffff\U0010FFFF\xED\x9F\xBF\x7F\x01\"}";  // edges of valid UTF-8
  tricky.priority = INT_MIN;
  tricky.timeout_ms = INT64_MAX;
  tricky.max_retries = 0;
  tricky.attempt = UINT32_MAX;
  tricky.async = true;
  tricky.created_at_ms = INT64_MAX;
  StoredTask big = make_task("big", INT_MAX, -5);
  big.task_data_json = R"({"text":")" + std::string(300'000, 'x') + R"("})";
  big.timeout_ms = 0;
  StoredTask empty_id = make_task("");

  WriteBatch b;
  for (const auto* t : {&plain, &tricky, &big, &empty_id}) b.add_task(*t);
  store().write(b);

  EXPECT_EQ(store().find_task("t1"), record(plain, TaskState::queued));
  EXPECT_EQ(store().find_task(tricky.task_id), record(tricky, TaskState::queued));
  EXPECT_EQ(store().find_task("big"), record(big, TaskState::queued));
  EXPECT_EQ(store().find_task(""), record(empty_id, TaskState::queued));
  EXPECT_EQ(store().find_result("t1"), std::nullopt);
  EXPECT_EQ(store().counts(), (StoreCounts{4, 0, 0}));
}

TEST_P(StoreConformance, StartMarksRunningAndStoresAttempt) {
  WriteBatch b;
  b.add_task(make_task("a"));
  b.add_task(make_task("b"));
  store().write(b);
  b.clear();
  b.start("a", 1);
  store().write(b);

  StoredTask a = make_task("a");
  a.attempt = 1;
  EXPECT_EQ(store().find_task("a"), record(a, TaskState::running));
  EXPECT_EQ(store().find_task("b"), record(make_task("b"), TaskState::queued));
  EXPECT_EQ(store().counts(), (StoreCounts{1, 1, 0}));

  b.clear();
  b.start("a", 2);  // dispatched again (e.g. its first worker stopped answering)
  store().write(b);
  a.attempt = 2;
  EXPECT_EQ(store().find_task("a"), record(a, TaskState::running));
}

TEST_P(StoreConformance, RequeueReturnsToQueuedKeepingAttempt) {
  WriteBatch b;
  b.add_task(make_task("a"));
  b.start("a", 3);
  store().write(b);
  b.clear();
  b.requeue("a");
  store().write(b);

  StoredTask a = make_task("a");
  a.attempt = 3;
  EXPECT_EQ(store().find_task("a"), record(a, TaskState::queued));
  EXPECT_EQ(store().counts(), (StoreCounts{1, 0, 0}));
}

TEST_P(StoreConformance, FinishStoresResultAndMarksDone) {
  WriteBatch b;
  b.add_task(make_task("a"));
  b.add_task(make_task("b"));
  b.start("a", 1);
  store().write(b);
  b.clear();
  b.finish(make_result("a", 5000));
  store().write(b);

  StoredTask a = make_task("a");
  a.attempt = 1;
  EXPECT_EQ(store().find_task("a"), record(a, TaskState::done));
  EXPECT_EQ(store().find_result("a"), make_result("a", 5000));
  EXPECT_EQ(store().find_result("b"), std::nullopt);
  EXPECT_EQ(ids_of(store().load_unfinished()), std::vector<std::string>{"b"});
  EXPECT_EQ(store().counts(), (StoreCounts{1, 0, 1}));
}

TEST_P(StoreConformance, SecondFinishReplacesResult) {
  WriteBatch b;
  b.add_task(make_task("a"));
  b.finish(make_result("a", 10));
  store().write(b);
  b.clear();
  b.finish(make_result("a", 20, "error"));
  store().write(b);
  EXPECT_EQ(store().find_result("a"), make_result("a", 20, "error"));
  EXPECT_EQ(store().counts(), (StoreCounts{0, 0, 1}));
}

TEST_P(StoreConformance, DropDeletesTaskInEveryState) {
  WriteBatch b;
  b.add_task(make_task("queued"));
  b.add_task(make_task("running"));
  b.add_task(make_task("done"));
  b.add_task(make_task("kept"));
  b.start("running", 1);
  b.finish(make_result("done", 7));
  store().write(b);
  b.clear();
  b.drop("queued");
  b.drop("running");
  b.drop("done");
  store().write(b);

  EXPECT_EQ(store().find_task("queued"), std::nullopt);
  EXPECT_EQ(store().find_task("running"), std::nullopt);
  EXPECT_EQ(store().find_task("done"), std::nullopt);
  EXPECT_EQ(store().find_result("done"), std::nullopt);
  EXPECT_EQ(store().find_task("kept"), record(make_task("kept"), TaskState::queued));
  EXPECT_EQ(store().counts(), (StoreCounts{1, 0, 0}));
}

TEST_P(StoreConformance, ResubmittedFinishedTaskReplacesItAndForgetsItsResult) {
  WriteBatch b;
  b.add_task(make_task("a"));
  b.start("a", 2);
  b.finish(make_result("a", 50));
  store().write(b);

  StoredTask again = make_task("a", 9, 6000);
  again.task_type = "reverse";
  again.task_data_json = R"({"text":"new"})";
  b.clear();
  b.add_task(again);
  store().write(b);

  EXPECT_EQ(store().find_task("a"), record(again, TaskState::queued));
  EXPECT_EQ(store().find_result("a"), std::nullopt);
  EXPECT_EQ(store().load_unfinished(), std::vector<TaskRecord>{record(again, TaskState::queued)});
  EXPECT_EQ(store().counts(), (StoreCounts{1, 0, 0}));
}

TEST_P(StoreConformance, AddOverUnfinishedTaskReplacesIt) {
  WriteBatch b;
  b.add_task(make_task("a"));
  b.start("a", 1);
  store().write(b);
  StoredTask again = make_task("a", 2, 3000);
  b.clear();
  b.add_task(again);
  store().write(b);
  EXPECT_EQ(store().find_task("a"), record(again, TaskState::queued));
  EXPECT_EQ(store().counts(), (StoreCounts{1, 0, 0}));
}

TEST_P(StoreConformance, StartOrRequeueOfDoneTaskChangesNothing) {
  WriteBatch b;
  b.add_task(make_task("a"));
  b.start("a", 1);
  b.finish(make_result("a", 9));
  store().write(b);
  b.clear();
  b.start("a", 2);  // a stale dispatch
  b.requeue("a");
  store().write(b);

  StoredTask a = make_task("a");
  a.attempt = 1;
  EXPECT_EQ(store().find_task("a"), record(a, TaskState::done));
  EXPECT_EQ(store().find_result("a"), make_result("a", 9));
}

TEST_P(StoreConformance, StartRequeueDropOfUnknownTaskChangeNothing) {
  WriteBatch b;
  b.add_task(make_task("a"));
  store().write(b);
  b.clear();
  b.start("x", 1);
  b.requeue("y");
  b.drop("z");
  store().write(b);
  EXPECT_EQ(store().find_task("x"), std::nullopt);
  EXPECT_EQ(store().find_task("y"), std::nullopt);
  EXPECT_EQ(store().find_task("z"), std::nullopt);
  EXPECT_EQ(store().counts(), (StoreCounts{1, 0, 0}));
}

TEST_P(StoreConformance, ResultOfUnknownTaskIsKeptAsDoneTask) {
  WriteBatch b;
  b.finish(make_result("ghost", 1234));
  store().write(b);

  StoredTask expected;
  expected.task_id = "ghost";
  expected.created_at_ms = 1234;
  EXPECT_EQ(store().find_task("ghost"), record(expected, TaskState::done));
  EXPECT_EQ(store().find_result("ghost"), make_result("ghost", 1234));
  EXPECT_EQ(store().counts(), (StoreCounts{0, 0, 1}));
}

TEST_P(StoreConformance, OperationsInOneBatchApplyInOrder) {
  StoredTask existing = make_task("existing");
  WriteBatch setup;
  setup.add_task(existing);
  setup.add_task(make_task("to_drop"));
  store().write(setup);

  WriteBatch b;
  // Submitted, dispatched, its worker lost, dispatched again: running, second attempt.
  b.add_task(make_task("redispatched"));
  b.start("redispatched", 1);
  b.requeue("redispatched");
  b.start("redispatched", 2);
  // Submitted and finished within the turn.
  b.add_task(make_task("fast"));
  b.start("fast", 1);
  b.finish(make_result("fast", 100));
  // Submitted, then its client went away.
  b.add_task(make_task("abandoned"));
  b.drop("abandoned");
  // Dropped, then the same id submitted again.
  b.drop("to_drop");
  b.add_task(make_task("to_drop", 0, 2000));
  // A stored task requeued after its new dispatch: queued, attempt kept.
  b.start("existing", 4);
  b.requeue("existing");
  // Finished, then a stale start: still done.
  b.add_task(make_task("stale"));
  b.finish(make_result("stale", 200));
  b.start("stale", 9);
  // Dropped, then a late result: the result is kept.
  b.add_task(make_task("late"));
  b.drop("late");
  b.finish(make_result("late", 300));
  store().write(b);

  StoredTask redispatched = make_task("redispatched");
  redispatched.attempt = 2;
  EXPECT_EQ(store().find_task("redispatched"), record(redispatched, TaskState::running));
  StoredTask fast = make_task("fast");
  fast.attempt = 1;
  EXPECT_EQ(store().find_task("fast"), record(fast, TaskState::done));
  EXPECT_EQ(store().find_result("fast"), make_result("fast", 100));
  EXPECT_EQ(store().find_task("abandoned"), std::nullopt);
  EXPECT_EQ(store().find_task("to_drop"), record(make_task("to_drop", 0, 2000), TaskState::queued));
  existing.attempt = 4;
  EXPECT_EQ(store().find_task("existing"), record(existing, TaskState::queued));
  EXPECT_EQ(store().find_task("stale"), record(make_task("stale"), TaskState::done));
  StoredTask late;
  late.task_id = "late";
  late.created_at_ms = 300;
  EXPECT_EQ(store().find_task("late"), record(late, TaskState::done));
  EXPECT_EQ(store().find_result("late"), make_result("late", 300));
  EXPECT_EQ(store().counts(), (StoreCounts{2, 1, 3}));
}

TEST_P(StoreConformance, LoadUnfinishedOrdersByPriorityThenAgeThenSubmission) {
  WriteBatch b;
  b.add_task(make_task("low-old", 0, 100));
  b.add_task(make_task("high-new", 5, 900));
  b.add_task(make_task("mid-a", 1, 500));
  b.add_task(make_task("low-new", 0, 800));
  b.add_task(make_task("mid-b", 1, 500));  // same priority and age as mid-a: after it
  b.add_task(make_task("high-old", 5, 200));
  b.add_task(make_task("negative", -3, 1));
  b.add_task(make_task("done", 100, 1));
  store().write(b);
  b.clear();
  b.add_task(make_task("mid-c", 1, 500));  // a later batch, same key again: last
  b.start("low-old", 1);                   // running tasks come back too
  b.finish(make_result("done", 5));
  store().write(b);

  const auto unfinished = store().load_unfinished();
  EXPECT_EQ(ids_of(unfinished),
            (std::vector<std::string>{"high-old", "high-new", "mid-a", "mid-b", "mid-c", "low-old",
                                      "low-new", "negative"}));
  StoredTask low_old = make_task("low-old", 0, 100);
  low_old.attempt = 1;
  EXPECT_EQ(unfinished[5], record(low_old, TaskState::running));
  EXPECT_EQ(unfinished[0], record(make_task("high-old", 5, 200), TaskState::queued));
}

TEST_P(StoreConformance, ReopenedStoreHasTheSameData) {
  WriteBatch b;
  StoredTask a = make_task("a", 1, 10);
  a.timeout_ms = 30000;
  a.async = true;
  b.add_task(a);
  b.add_task(make_task("b", 1, 10));
  b.add_task(make_task("c"));
  b.start("b", 1);
  b.finish(make_result("c", 77));
  store().write(b);
  const auto before = store().load_unfinished();

  reopen();
  if (!env().persistent()) {
    EXPECT_EQ(store().counts(), StoreCounts{}) << "a memory store starts empty";
    return;
  }
  EXPECT_EQ(store().load_unfinished(), before);
  EXPECT_EQ(store().find_result("c"), make_result("c", 77));
  EXPECT_EQ(store().counts(), (StoreCounts{1, 1, 1}));

  // Submission order survives the restart: a task added now sorts after a and b.
  b.clear();
  b.add_task(make_task("d", 1, 10));
  store().write(b);
  EXPECT_EQ(ids_of(store().load_unfinished()), (std::vector<std::string>{"a", "b", "d"}));
}

TEST_P(StoreConformance, PurgeDeletesOldestResultsUpToLimit) {
  WriteBatch b;
  for (int i = 1; i <= 5; ++i) {
    const std::string id = "r" + std::to_string(i);
    b.add_task(make_task(id));
    b.finish(make_result(id, i * 10));  // r1 at 10 ... r5 at 50
  }
  b.add_task(make_task("queued"));
  b.add_task(make_task("running"));
  b.start("running", 1);
  store().write(b);

  EXPECT_EQ(store().purge_results_before(45, 2), 2);
  EXPECT_EQ(store().find_task("r1"), std::nullopt);
  EXPECT_EQ(store().find_task("r2"), std::nullopt);
  EXPECT_EQ(store().find_result("r3"), make_result("r3", 30));
  EXPECT_EQ(store().purge_results_before(45, 2), 2);  // r3, r4
  EXPECT_EQ(store().purge_results_before(45, 2), 0);  // r5 finished at 50: not before 45
  EXPECT_EQ(store().find_result("r5"), make_result("r5", 50));
  EXPECT_EQ(store().purge_results_before(50, 10), 0);  // strictly before
  EXPECT_EQ(store().counts(), (StoreCounts{1, 1, 1}));
  EXPECT_EQ(store().purge_results_before(INT64_MAX, 10), 1);
  EXPECT_EQ(store().counts(), (StoreCounts{1, 1, 0}));
}

TEST_P(StoreConformance, ForEachDoneListsFinishedTasksOldestFirst) {
  WriteBatch b;
  b.add_task(make_task("late"));
  b.finish(make_result("late", 30));
  b.add_task(make_task("early"));
  b.finish(make_result("early", 10));
  b.add_task(make_task("tie-first"));
  b.finish(make_result("tie-first", 20));
  b.finish(make_result("tie-second", 20));  // a result whose task was never stored
  b.add_task(make_task("queued"));
  b.add_task(make_task("running"));
  b.start("running", 1);
  store().write(b);
  std::vector<std::pair<std::string, std::int64_t>> seen;
  store().for_each_done([&](std::string_view id, std::int64_t at) { seen.emplace_back(id, at); });
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::int64_t>>{
                      {"early", 10}, {"tie-first", 20}, {"tie-second", 20}, {"late", 30}}));
}

TEST_P(StoreConformance, PurgeWithNonPositiveLimitDeletesNothing) {
  WriteBatch b;
  b.finish(make_result("a", 1));
  store().write(b);
  EXPECT_EQ(store().purge_results_before(100, 0), 0);
  EXPECT_EQ(store().purge_results_before(100, -1), 0);
  EXPECT_EQ(store().counts(), (StoreCounts{0, 0, 1}));
}

TEST_P(StoreConformance, EmptyBatchChangesNothing) {
  store().write(WriteBatch{});
  EXPECT_EQ(store().counts(), StoreCounts{});
}

TEST_P(StoreConformance, BatchWithUnstorableTextIsRejectedWholeAndStoreStaysUsable) {
  struct Case {
    const char* name;
    WriteBatch batch;
    std::string message_end;
  };
  std::vector<Case> cases(3);
  cases[0].name = "NUL in a task_id";
  cases[0].batch.add_task(make_task("fine"));
  cases[0].batch.add_task(make_task(std::string("nul\0id", 6)));
  cases[0].message_end = "batch rejected: the task_id is not valid UTF-8 or contains a NUL byte";
  cases[1].name = "invalid UTF-8 in task_data";
  StoredTask bad_data = make_task("bad-data");
  bad_data.task_data_json = "{\"text\":\"\xC3\x28\"}";
  cases[1].batch.add_task(make_task("fine"));
  cases[1].batch.add_task(bad_data);
  cases[1].message_end =
      "batch rejected: the task_data of task \"bad-data\" is not valid UTF-8 or contains a NUL "
      "byte";
  cases[2].name = "a UTF-16 surrogate in a result";
  cases[2].batch.add_task(make_task("fine"));
  cases[2].batch.finish(StoredResult{"fine", "\xED\xA0\x80", 1});
  cases[2].message_end =
      "batch rejected: the result of task \"fine\" is not valid UTF-8 or contains a NUL byte";

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    try {
      store().write(c.batch);
      ADD_FAILURE() << "the batch must be rejected";
    } catch (const InvalidBatchError& e) {
      const std::string message = e.what();
      EXPECT_TRUE(message.ends_with(": write failed: " + c.message_end)) << message;
    }
    EXPECT_EQ(store().find_task("fine"), std::nullopt);
  }

  WriteBatch good;
  good.add_task(make_task("fine"));
  store().write(good);
  EXPECT_EQ(store().counts(), (StoreCounts{1, 0, 0}));
}

TEST_P(StoreConformance, LargeBatchesAreWrittenWhole) {
  constexpr int kTasks = 3000;
  WriteBatch b;
  for (int i = 0; i < kTasks; ++i) b.add_task(make_task("t" + std::to_string(i), i % 7, i));
  store().write(b);
  EXPECT_EQ(store().counts(), (StoreCounts{kTasks, 0, 0}));

  b.clear();
  for (int i = 0; i < kTasks; i += 2) b.start("t" + std::to_string(i), 1);
  for (int i = 0; i < kTasks; i += 3) b.finish(make_result("t" + std::to_string(i), i));
  store().write(b);
  // done: multiples of 3 (1000); running: even non-multiples of 3 (1000); queued: the rest.
  EXPECT_EQ(store().counts(), (StoreCounts{1000, 1000, 1000}));
  const auto unfinished = store().load_unfinished();
  ASSERT_EQ(unfinished.size(), 2000u);
  EXPECT_TRUE(std::is_sorted(unfinished.begin(), unfinished.end(),
                             [](const TaskRecord& x, const TaskRecord& y) {
                               if (x.task.priority != y.task.priority) {
                                 return x.task.priority > y.task.priority;
                               }
                               return x.task.created_at_ms < y.task.created_at_ms;
                             }));
}

// Random batches over a few ids, so that every mix of operations on one task within a
// batch and across batches comes up; after each batch the store must hold exactly what
// MemoryStore (which applies operations one by one, the definition) holds.
// A start and the finish that follows it in one batch (a running record held back for
// the result) become one write in the SQL stores; the outcome must not change.
TEST_P(StoreConformance, StartThenFinishInOneBatchKeepsTheStartsAttemptOnlyOnUnfinishedRows) {
  WriteBatch setup;
  setup.add_task(make_task("queued"));
  setup.add_task(make_task("done"));
  setup.start("done", 1);
  setup.finish(make_result("done", 50));
  store().write(setup);

  WriteBatch b;
  b.start("queued", 3);
  b.finish(make_result("queued", 100));
  b.start("done", 7);  // a stale start of a finished task, then a second finish
  b.finish(make_result("done", 200));
  b.start("missing", 2);  // a late result of a task the store does not hold
  b.finish(make_result("missing", 300));
  store().write(b);

  StoredTask queued = make_task("queued");
  queued.attempt = 3;
  EXPECT_EQ(store().find_task("queued"), record(queued, TaskState::done));
  EXPECT_EQ(store().find_result("queued"), make_result("queued", 100));
  StoredTask done = make_task("done");
  done.attempt = 1;
  EXPECT_EQ(store().find_task("done"), record(done, TaskState::done));
  EXPECT_EQ(store().find_result("done"), make_result("done", 200));
  StoredTask missing;
  missing.task_id = "missing";
  missing.created_at_ms = 300;
  EXPECT_EQ(store().find_task("missing"), record(missing, TaskState::done));
  EXPECT_EQ(store().counts(), (StoreCounts{0, 0, 3}));
}

TEST_P(StoreConformance, RandomBatchesMatchTheOneByOneDefinition) {
  constexpr int kIds = 10;
  auto id = [](int i) { return "id" + std::to_string(i); };
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::unique_ptr<StoreEnv> env = GetParam().make_env();
    std::unique_ptr<TaskStore> tested = env->open();
    MemoryStore reference;
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint32_t>(n)); };

    for (int round = 0; round < 25; ++round) {
      WriteBatch b;
      const int ops = 1 + pick(12);
      for (int k = 0; k < ops; ++k) {
        const int i = pick(kIds);
        switch (pick(5)) {
          case 0: {
            StoredTask t = make_task(id(i), pick(3), pick(4));  // many ties of the sort key
            t.task_data_json = std::to_string(round);
            t.async = pick(2) == 1;
            b.add_task(t);
            break;
          }
          case 1:
            b.start(id(i), static_cast<std::uint32_t>(1 + pick(5)));
            break;
          case 2:
            b.requeue(id(i));
            break;
          case 3:
            b.finish(make_result(id(i), pick(4), round % 2 ? "success" : "error"));
            break;
          case 4:
            b.drop(id(i));
            break;
        }
      }
      tested->write(b);
      reference.write(b);

      SCOPED_TRACE("round " + std::to_string(round));
      ASSERT_EQ(tested->load_unfinished(), reference.load_unfinished());
      ASSERT_EQ(tested->counts(), reference.counts());
      for (int i = 0; i < kIds; ++i) {
        ASSERT_EQ(tested->find_task(id(i)), reference.find_task(id(i))) << id(i);
        ASSERT_EQ(tested->find_result(id(i)), reference.find_result(id(i))) << id(i);
      }
      if (round % 8 == 7) {  // purge order, ties on finished_at_ms included, agrees too
        ASSERT_EQ(tested->purge_results_before(3, 2), reference.purge_results_before(3, 2));
      }
    }
  }
}

}  // namespace
}  // namespace sd::store::testing
