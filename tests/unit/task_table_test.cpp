#include "server/task_table.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>

namespace sd::server {
namespace {

std::string id(int i) { return "sdb-4f2a9c.r." + std::to_string(i); }

TEST(TaskTable, FindsWhatWasAddedAndNothingElse) {
  TaskTable t;
  EXPECT_EQ(t.find("a"), nullptr);
  auto [e, added] = t.try_emplace("a");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(added);
  EXPECT_EQ(e->msg.task_id, "a");
  EXPECT_EQ(t.find("a"), e);
  EXPECT_TRUE(t.contains("a"));
  EXPECT_EQ(t.find("b"), nullptr);
  EXPECT_FALSE(t.contains(""));
  EXPECT_EQ(t.size(), 1U);
}

TEST(TaskTable, AddingAnIdAgainGivesTheEntryThatIsThere) {
  TaskTable t;
  TaskEntry* first = t.try_emplace("a").first;
  first->seq = 7;
  auto [again, added] = t.try_emplace("a");
  EXPECT_FALSE(added);
  EXPECT_EQ(again, first);
  EXPECT_EQ(again->seq, 7U);
  EXPECT_EQ(t.size(), 1U);
}

TEST(TaskTable, EntriesKeepTheirAddressWhileTheIndexGrows) {
  TaskTable t;
  std::map<std::string, TaskEntry*> where;
  for (int i = 0; i < 5000; ++i) where[id(i)] = t.try_emplace(id(i)).first;
  for (const auto& [key, entry] : where) {
    ASSERT_EQ(t.find(key), entry) << key;
    EXPECT_EQ(entry->msg.task_id, key);
  }
  EXPECT_EQ(t.size(), 5000U);
}

TEST(TaskTable, ErasingKeepsEveryOtherEntryFindable) {
  // Random adds and erases against a reference model: the probe runs that backward-shift
  // deletion rearranges must still find every entry left, and nothing erased.
  TaskTable t;
  std::set<std::string> model;
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> pick(0, 3999);
  for (int step = 0; step < 40000; ++step) {
    const std::string key = id(pick(rng));
    if (rng() % 3 == 0 && model.count(key) != 0) {
      t.erase(*t.find(key));
      model.erase(key);
    } else {
      EXPECT_EQ(t.try_emplace(key).second, model.insert(key).second) << key;
    }
    ASSERT_EQ(t.size(), model.size());
  }
  for (int i = 0; i < 4000; ++i) {
    const TaskEntry* e = t.find(id(i));
    ASSERT_EQ(e != nullptr, model.count(id(i)) != 0) << id(i);
    if (e != nullptr) {
      EXPECT_EQ(e->msg.task_id, id(i));
    }
  }
}

TEST(TaskTable, TheIndexShrinksWhenMostEntriesHaveGoneAndKeepsTheRest) {
  TaskTable t;
  std::vector<TaskEntry*> entries;
  for (int i = 0; i < 10000; ++i) entries.push_back(t.try_emplace(id(i)).first);
  const std::size_t grown = t.slots();
  EXPECT_GE(grown, 20000U);
  for (int i = 10; i < 10000; ++i) t.erase(*entries[i]);
  EXPECT_LE(t.slots(), 128U) << "a burst leaves no large index behind";
  EXPECT_EQ(t.size(), 10U);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.find(id(i)), entries[i]) << i;
  for (int i = 10; i < 10000; i += 997) EXPECT_EQ(t.find(id(i)), nullptr) << i;
}

TEST(TaskTable, ForEachVisitsEveryEntryOnce) {
  TaskTable t;
  for (int i = 0; i < 300; ++i) t.try_emplace(id(i));
  t.erase(*t.find(id(17)));
  std::multiset<std::string> seen;
  t.for_each([&](TaskEntry& e) { seen.insert(e.msg.task_id); });
  EXPECT_EQ(seen.size(), 299U);
  EXPECT_EQ(seen.count(id(17)), 0U);
  for (int i = 0; i < 300; ++i) {
    if (i != 17) {
      EXPECT_EQ(seen.count(id(i)), 1U) << i;
    }
  }
}

TEST(TaskTable, AnEmptyIdIsAKeyLikeAnyOther) {
  TaskTable t;
  EXPECT_TRUE(t.try_emplace("").second);
  EXPECT_NE(t.find(""), nullptr);
  t.erase(*t.find(""));
  EXPECT_EQ(t.find(""), nullptr);
  EXPECT_EQ(t.size(), 0U);
}

}  // namespace
}  // namespace sd::server
