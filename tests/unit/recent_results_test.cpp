#include "server/recent_results.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sd::server {
namespace {

std::string id(int i) { return "task-" + std::to_string(i); }

TEST(RecentResults, FindsWhatWasPutAndNothingElse) {
  RecentResults r(4);
  EXPECT_EQ(r.find("a"), nullptr);
  r.put("a", "reverse", R"({"text":"x"})", R"({"type":"RESULT","task_id":"a"})", 10);
  const auto* e = r.find("a");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->task_id(), "a");
  EXPECT_EQ(e->task_type(), "reverse");
  EXPECT_EQ(e->task_data(), R"({"text":"x"})");
  EXPECT_EQ(e->line(), R"({"type":"RESULT","task_id":"a"})");
  EXPECT_EQ(e->finished_at_ms, 10);
  EXPECT_EQ(r.find("b"), nullptr);
  EXPECT_EQ(r.size(), 1U);
}

TEST(RecentResults, AFullRingForgetsTheOldestFirst) {
  RecentResults r(3);
  for (int i = 0; i < 5; ++i) r.put(id(i), "t", "{}", "line" + std::to_string(i), i);
  EXPECT_EQ(r.size(), 3U);
  EXPECT_EQ(r.find(id(0)), nullptr);
  EXPECT_EQ(r.find(id(1)), nullptr);
  for (int i = 2; i < 5; ++i) {
    ASSERT_NE(r.find(id(i)), nullptr) << i;
    EXPECT_EQ(r.find(id(i))->line(), "line" + std::to_string(i));
  }
}

TEST(RecentResults, PuttingAnIdAgainUpdatesItInPlace) {
  RecentResults r(2);
  r.put("a", "t", "{}", "first", 1);
  r.put("b", "t", "{}", "b", 2);
  r.put("a", "t2", R"({"n":1})", "second", 3);  // same id: no new slot, order unchanged
  EXPECT_EQ(r.size(), 2U);
  EXPECT_EQ(r.find("a")->line(), "second");
  EXPECT_EQ(r.find("a")->task_type(), "t2");
  r.put("c", "t", "{}", "c", 4);  // evicts "a", still the oldest slot
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_NE(r.find("b"), nullptr);
  EXPECT_NE(r.find("c"), nullptr);
}

TEST(RecentResults, EachTextComesBackWholeWhateverTheLengthsBeforeIt) {
  // An entry's four texts share one buffer: when the ring comes round, a slot that held
  // long texts takes short or empty ones, and the other way round.
  RecentResults r(2);
  const std::string long_text(300, 'x');
  r.put("a", long_text, long_text, long_text, 1);
  r.put("b", "", "", "", 2);
  r.put("c", "t", "", std::string(40, 'l'), 3);  // takes a's slot
  r.put("d", long_text + "t", "{}", "d", 4);     // takes b's slot
  r.put("d", "", long_text, "", 5);              // updated in place, shorter id texts
  const auto* c = r.find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->task_id(), "c");
  EXPECT_EQ(c->task_type(), "t");
  EXPECT_EQ(c->task_data(), "");
  EXPECT_EQ(c->line(), std::string(40, 'l'));
  const auto* d = r.find("d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->task_id(), "d");
  EXPECT_EQ(d->task_type(), "");
  EXPECT_EQ(d->task_data(), long_text);
  EXPECT_EQ(d->line(), "");
  EXPECT_EQ(d->finished_at_ms, 5);
}

TEST(RecentResults, EraseForgetsOneIdAndItsSlotIsReusedInTurn) {
  RecentResults r(3);
  r.put("a", "t", "{}", "a", 1);
  r.put("b", "t", "{}", "b", 2);
  r.erase("a");
  r.erase("zzz");  // not held: nothing happens
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_EQ(r.size(), 1U);
  r.put("c", "t", "{}", "c", 3);
  r.put("d", "t", "{}", "d", 4);  // takes the slot "a" left (the oldest)
  EXPECT_EQ(r.size(), 3U);
  EXPECT_NE(r.find("b"), nullptr);
  EXPECT_NE(r.find("c"), nullptr);
  EXPECT_NE(r.find("d"), nullptr);
  r.put("a", "t", "{}", "a again", 5);  // evicts "b"
  EXPECT_EQ(r.find("b"), nullptr);
  EXPECT_EQ(r.find("a")->line(), "a again");
}

TEST(RecentResults, ExpiryForgetsWhatFinishedStrictlyBeforeTheCutoffInOrder) {
  RecentResults r(10);
  r.put("a", "t", "{}", "a", 10);
  r.put("b", "t", "{}", "b", 20);
  r.put("c", "t", "{}", "c", 30);
  r.expire_before(20);
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_NE(r.find("b"), nullptr);
  EXPECT_NE(r.find("c"), nullptr);
  r.put("b", "t", "{}", "b", 40);  // finished again: stays until what came before it goes
  r.expire_before(35);
  EXPECT_NE(r.find("b"), nullptr);
  EXPECT_NE(r.find("c"), nullptr);
  r.erase("b");
  r.expire_before(35);  // an erased slot at the front does not stop expiry
  EXPECT_EQ(r.find("c"), nullptr);
  EXPECT_EQ(r.size(), 0U);
  r.put("d", "t", "{}", "d", 50);
  EXPECT_NE(r.find("d"), nullptr);
}

TEST(RecentResults, CapacityZeroKeepsNothing) {
  RecentResults r(0);
  r.put("a", "t", "{}", "a", 1);
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_EQ(r.size(), 0U);
  r.erase("a");
  r.expire_before(100);
}

TEST(RecentResults, ManyIdsThroughASmallRingStayConsistent) {
  // Enough churn to wrap the ring many times and exercise the index's deletions.
  constexpr int kCap = 100;
  RecentResults r(kCap);
  for (int i = 0; i < 10'000; ++i) {
    r.put(id(i), "t", "{}", std::to_string(i), i);
    if (i % 7 == 0) r.erase(id(i - 3));
  }
  int found = 0;
  for (int i = 0; i < 10'000; ++i) {
    const auto* e = r.find(id(i));
    if (e == nullptr) continue;
    ++found;
    EXPECT_GE(i, 10'000 - kCap);
    EXPECT_EQ(e->line(), std::to_string(i));
  }
  EXPECT_EQ(static_cast<std::size_t>(found), r.size());
  EXPECT_GE(found, kCap - kCap / 7 - 1);
}

}  // namespace
}  // namespace sd::server
