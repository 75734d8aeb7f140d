#include "server/done_id_filter.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sd::server {
namespace {

TEST(DoneIdFilter, AnIdNeverAddedIsNotThere) {
  DoneIdFilter f;
  EXPECT_FALSE(f.may_contain("a"));
  f.add("a", 10);
  EXPECT_TRUE(f.may_contain("a"));
  EXPECT_FALSE(f.may_contain("b"));
  EXPECT_EQ(f.size(), 1U);
}

TEST(DoneIdFilter, ExpiryForgetsOnlyWhatFinishedStrictlyBeforeTheCutoff) {
  DoneIdFilter f;
  f.add("a", 10);
  f.add("b", 20);
  f.add("c", 30);
  f.expire_before(20);
  EXPECT_FALSE(f.may_contain("a"));
  EXPECT_TRUE(f.may_contain("b"));
  EXPECT_TRUE(f.may_contain("c"));
  f.expire_before(31);
  EXPECT_FALSE(f.may_contain("b"));
  EXPECT_FALSE(f.may_contain("c"));
  EXPECT_EQ(f.size(), 0U);
}

TEST(DoneIdFilter, AnIdFinishedAgainStaysUntilItsLastFinishExpires) {
  DoneIdFilter f;
  f.add("a", 10);
  f.add("b", 15);
  f.add("a", 20);  // resubmitted with other content and finished again
  f.expire_before(16);
  EXPECT_TRUE(f.may_contain("a"));
  EXPECT_FALSE(f.may_contain("b"));
  f.expire_before(21);
  EXPECT_FALSE(f.may_contain("a"));
}

TEST(DoneIdFilter, ManyIdsHaveNoFalseNegatives) {
  DoneIdFilter f;
  for (int i = 0; i < 100000; ++i) f.add("task-" + std::to_string(i), i);
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(f.may_contain("task-" + std::to_string(i))) << i;
  int false_positives = 0;
  for (int i = 100000; i < 200000; ++i) false_positives += f.may_contain("task-" + std::to_string(i)) ? 1 : 0;
  EXPECT_EQ(false_positives, 0);  // 64-bit fingerprints: a collision here would be a bug
}

}  // namespace
}  // namespace sd::server

namespace sd::server {
namespace {

TEST(DoneIdFilter, ExpiringHalfOfManyKeepsEveryOtherReachable) {
  // Deletions in a probing table must not hide the entries that probed past them.
  DoneIdFilter f;
  for (int i = 0; i < 50000; ++i) f.add("id-" + std::to_string(i), i);
  f.expire_before(25000);
  for (int i = 0; i < 25000; ++i) ASSERT_FALSE(f.may_contain("id-" + std::to_string(i))) << i;
  for (int i = 25000; i < 50000; ++i) ASSERT_TRUE(f.may_contain("id-" + std::to_string(i))) << i;
  for (int i = 50000; i < 60000; ++i) f.add("id-" + std::to_string(i), i);
  f.expire_before(60000);
  EXPECT_EQ(f.size(), 0U);
  for (int i = 0; i < 60000; i += 7) ASSERT_FALSE(f.may_contain("id-" + std::to_string(i))) << i;
}

}  // namespace
}  // namespace sd::server

namespace sd::server {
namespace {

TEST(DoneIdFilter, ForgetOldestGoesInTheOrderOfAdding) {
  DoneIdFilter f;
  f.forget_oldest();  // empty: nothing happens
  f.add("a", 30);
  f.add("b", 10);
  f.forget_oldest();
  EXPECT_FALSE(f.may_contain("a"));
  EXPECT_TRUE(f.may_contain("b"));
  f.forget_oldest();
  EXPECT_EQ(f.size(), 0U);
}

}  // namespace
}  // namespace sd::server
