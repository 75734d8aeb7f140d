#include "server/task_queue.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/task_entry.hpp"

namespace sd::server {
namespace {

/// Owns the entries the queue points at; seq grows in creation order, as the server's.
class Tasks {
 public:
  TaskEntry* make(std::string id, std::string type = "hash", int priority = 0) {
    TaskEntry& t = entries_.emplace_back();
    t.msg.task_id = std::move(id);
    t.msg.task_type = std::move(type);
    t.msg.priority = priority;
    t.seq = next_seq_++;
    return &t;
  }

 private:
  std::deque<TaskEntry> entries_;  // stable addresses
  std::uint64_t next_seq_ = 1;
};

const std::vector<std::string> kAnyType;

/// Pops for `types` until the queue has nothing more for them; returns the ids.
std::vector<std::string> pop_all(TaskQueue& q, std::span<const std::string> types = kAnyType) {
  std::vector<std::string> ids;
  while (TaskEntry* t = q.pop_for(types)) ids.push_back(t->msg.task_id);
  return ids;
}

using Ids = std::vector<std::string>;

TEST(TaskQueue, EmptyQueuePopsNothing) {
  TaskQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.pop_for(kAnyType), nullptr);
  const std::vector<std::string> hash{"hash"};
  EXPECT_EQ(q.pop_for(hash), nullptr);
}

TEST(TaskQueue, SameLevelIsFifo) {
  Tasks tasks;
  TaskQueue q;
  for (const char* id : {"a", "b", "c", "d"}) q.push_back(tasks.make(id));
  EXPECT_EQ(pop_all(q), (Ids{"a", "b", "c", "d"}));
}

TEST(TaskQueue, HigherPriorityFirstThenFifo) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("a", "hash", 0));
  q.push_back(tasks.make("b", "hash", 5));
  q.push_back(tasks.make("c", "hash", 0));
  q.push_back(tasks.make("d", "hash", 5));
  q.push_back(tasks.make("e", "hash", -1));
  q.push_back(tasks.make("f", "hash", 10));
  EXPECT_EQ(pop_all(q), (Ids{"f", "b", "d", "a", "c", "e"}));
}

TEST(TaskQueue, AFilterPassesOverTheTypesItRefusesAndKeepsTheirOrder) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("c1", "compute", 5));
  q.push_back(tasks.make("h1", "hash"));
  q.push_back(tasks.make("c2", "compute"));
  q.push_back(tasks.make("r1", "reverse"));
  const auto no_compute = [](std::string_view type) { return type != "compute"; };
  EXPECT_EQ(q.peek_for(kAnyType, no_compute)->msg.task_id, "h1");
  EXPECT_EQ(q.pop_for(kAnyType, no_compute)->msg.task_id, "h1");
  const std::vector<std::string> compute_and_reverse{"compute", "reverse"};
  EXPECT_EQ(q.pop_for(compute_and_reverse, no_compute)->msg.task_id, "r1");
  EXPECT_EQ(q.pop_for(kAnyType, no_compute), nullptr) << "only compute is left";
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(pop_all(q), (Ids{"c1", "c2"}));
}

TEST(TaskQueue, PushFrontGoesFirstWithinItsLevel) {
  Tasks tasks;
  TaskQueue q;
  TaskEntry* early = tasks.make("early");
  q.push_back(tasks.make("a"));
  q.push_back(tasks.make("b"));
  q.push_front(early);
  EXPECT_EQ(pop_all(q), (Ids{"early", "a", "b"}));
}

TEST(TaskQueue, PushFrontDoesNotJumpAHigherPriority) {
  Tasks tasks;
  TaskQueue q;
  TaskEntry* requeued = tasks.make("requeued", "hash", 0);
  q.push_back(tasks.make("urgent", "hash", 9));
  q.push_back(tasks.make("normal", "hash", 0));
  q.push_front(requeued);
  EXPECT_EQ(pop_all(q), (Ids{"urgent", "requeued", "normal"}));
}

TEST(TaskQueue, SeveralPushFrontsInReverseOrderKeepTheirOriginalOrder) {
  // What the dispatcher does with a lost worker's tasks.
  Tasks tasks;
  TaskQueue q;
  TaskEntry* x = tasks.make("x");
  TaskEntry* y = tasks.make("y");
  q.push_back(tasks.make("queued"));
  q.push_front(y);
  q.push_front(x);
  EXPECT_EQ(pop_all(q), (Ids{"x", "y", "queued"}));
}

TEST(TaskQueue, PopForTypesPicksTheHighestPriorityAcrossTypes) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("h0", "hash", 0));
  q.push_back(tasks.make("r3", "reverse", 3));
  q.push_back(tasks.make("f1", "fibonacci", 1));
  const std::vector<std::string> types{"fibonacci", "hash", "reverse"};
  EXPECT_EQ(pop_all(q, types), (Ids{"r3", "f1", "h0"}));
}

TEST(TaskQueue, PopForTypesBreaksTiesByAcceptanceOrderAcrossTypes) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("r1", "reverse"));
  q.push_back(tasks.make("h2", "hash"));
  q.push_back(tasks.make("r3", "reverse"));
  q.push_back(tasks.make("h4", "hash"));
  const std::vector<std::string> types{"hash", "reverse"};
  EXPECT_EQ(pop_all(q, types), (Ids{"r1", "h2", "r3", "h4"}));
}

TEST(TaskQueue, PopForTypesLeavesOtherTypesQueued) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("s1", "sleep", 100));
  q.push_back(tasks.make("h1", "hash"));
  q.push_back(tasks.make("s2", "sleep"));
  const std::vector<std::string> hash_only{"hash"};
  EXPECT_EQ(pop_all(q, hash_only), (Ids{"h1"}));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.pop_for(hash_only), nullptr);
  EXPECT_EQ(pop_all(q), (Ids{"s1", "s2"}));
}

TEST(TaskQueue, EmptyTypeSpanMeansAnyType) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("a", "hash"));
  q.push_back(tasks.make("b", "reverse", 2));
  q.push_back(tasks.make("c", "sleep"));
  EXPECT_EQ(pop_all(q), (Ids{"b", "a", "c"}));
  EXPECT_TRUE(q.empty());
}

TEST(TaskQueue, TypesNobodyQueuedAreHarmless) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("a", "hash"));
  const std::vector<std::string> types{"compute", "hash", "zzz"};
  EXPECT_EQ(pop_all(q, types), (Ids{"a"}));
  const std::vector<std::string> none_queued{"compute"};
  q.push_back(tasks.make("b", "hash"));
  EXPECT_EQ(q.pop_for(none_queued), nullptr);
  EXPECT_EQ(q.size(), 1u);
}

TEST(TaskQueue, SizeTracksPushesAndPops) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("a"));
  q.push_front(tasks.make("b", "reverse"));
  q.push_back(tasks.make("c", "hash", 3));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_FALSE(q.empty());
  ASSERT_NE(q.pop_for(kAnyType), nullptr);
  EXPECT_EQ(q.size(), 2u);
  (void)pop_all(q);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.empty());
}

TEST(TaskQueue, RemoveIfReturnsTheCountAndKeepsTheRestInOrder) {
  Tasks tasks;
  TaskQueue q;
  for (const char* id : {"keep1", "drop1", "keep2", "drop2"}) q.push_back(tasks.make(id));
  q.push_back(tasks.make("drop3", "reverse", 4));
  q.push_back(tasks.make("keep3", "reverse", 4));
  const auto removed = q.remove_if([](const TaskEntry& t) { return t.msg.task_id.starts_with("drop"); });
  EXPECT_EQ(removed, 3u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(pop_all(q), (Ids{"keep3", "keep1", "keep2"}));
}

TEST(TaskQueue, RemoveIfMatchingNothingRemovesNothing) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("a"));
  EXPECT_EQ(q.remove_if([](const TaskEntry&) { return false; }), 0u);
  EXPECT_EQ(q.size(), 1u);
}

TEST(TaskQueue, RemoveIfEverythingEmptiesTheQueue) {
  Tasks tasks;
  TaskQueue q;
  for (int i = 0; i < 10; ++i) q.push_back(tasks.make("t" + std::to_string(i), i % 2 ? "a" : "b", i % 3));
  EXPECT_EQ(q.remove_if([](const TaskEntry&) { return true; }), 10u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pop_for(kAnyType), nullptr);
  bool any = false;
  q.for_each_type([&any](std::string_view) { any = true; });
  EXPECT_FALSE(any);
}

TEST(TaskQueue, ForEachTypeListsOnlyTypesWithQueuedTasks) {
  Tasks tasks;
  TaskQueue q;
  q.push_back(tasks.make("a", "hash"));
  q.push_back(tasks.make("b", "reverse"));
  q.push_back(tasks.make("c", "sleep"));
  const std::vector<std::string> reverse{"reverse"};
  ASSERT_NE(q.pop_for(reverse), nullptr);
  std::set<std::string> types;
  q.for_each_type([&types](std::string_view type) { types.emplace(type); });
  EXPECT_EQ(types, (std::set<std::string>{"hash", "sleep"}));
}

TEST(TaskQueue, ManyTasksComeOutInPriorityThenAcceptanceOrder) {
  Tasks tasks;
  TaskQueue q;
  std::vector<TaskEntry*> all;
  for (int i = 0; i < 1000; ++i) {
    TaskEntry* t = tasks.make("t" + std::to_string(i), i % 3 == 0 ? "hash" : "reverse", (i * 7) % 5);
    all.push_back(t);
    q.push_back(t);
  }
  int last_priority = 1 << 30;
  std::uint64_t last_seq = 0;
  std::size_t popped = 0;
  while (TaskEntry* t = q.pop_for(kAnyType)) {
    if (t->msg.priority != last_priority) {
      EXPECT_LT(t->msg.priority, last_priority);
      last_priority = t->msg.priority;
    } else {
      EXPECT_GT(t->seq, last_seq);
    }
    last_seq = t->seq;
    ++popped;
  }
  EXPECT_EQ(popped, all.size());
}

}  // namespace
}  // namespace sd::server
