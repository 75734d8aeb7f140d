#include "tasks/sleep_task.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

namespace sd::tasks {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

boost::json::object parse_object(std::string_view json) { return boost::json::parse(json).as_object(); }

TEST(SleepTask, ZeroReturnsImmediately) {
  const auto start = steady_clock::now();
  const auto outcome = run_sleep(parse_object(R"({"ms":0})"), TaskContext{});
  EXPECT_LT(steady_clock::now() - start, seconds(1));
  ASSERT_TRUE(outcome.ok) << outcome.message;
  EXPECT_EQ(outcome.result_json, R"({"slept_ms":0})");
}

TEST(SleepTask, SleepsAtLeastTheRequestedTime) {
  const auto start = steady_clock::now();
  const auto outcome = run_sleep(parse_object(R"({"ms":30})"), TaskContext{});
  EXPECT_GE(steady_clock::now() - start, milliseconds(30));
  ASSERT_TRUE(outcome.ok) << outcome.message;
  EXPECT_EQ(outcome.result_json, R"({"slept_ms":30})");
}

TEST(SleepTask, StopRequestedBeforeStartIsTimeoutAtOnce) {
  std::stop_source stop;
  stop.request_stop();
  const auto start = steady_clock::now();
  const auto outcome = run_sleep(parse_object(R"({"ms":600000})"), TaskContext{stop.get_token()});
  EXPECT_LT(steady_clock::now() - start, seconds(5));
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
  EXPECT_TRUE(outcome.message.starts_with("sleep cancelled after ")) << outcome.message;
}

TEST(SleepTask, StopRequestedWhileSleepingWakesItUp) {
  // Whether the stop lands before or during the wait, a ten-minute sleep must end now.
  std::stop_source stop;
  TaskOutcome outcome;
  const auto start = steady_clock::now();
  {
    std::jthread sleeper(
        [&] { outcome = run_sleep(parse_object(R"({"ms":600000})"), TaskContext{stop.get_token()}); });
    stop.request_stop();
  }
  EXPECT_LT(steady_clock::now() - start, seconds(5));
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
  EXPECT_TRUE(outcome.message.starts_with("sleep cancelled after ")) << outcome.message;
}

TEST(SleepTask, DeadlineInThePastIsTimeoutAtOnce) {
  TaskContext ctx;
  ctx.deadline = steady_clock::now() - seconds(1);
  const auto start = steady_clock::now();
  const auto outcome = run_sleep(parse_object(R"({"ms":600000})"), ctx);
  EXPECT_LT(steady_clock::now() - start, seconds(5));
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
  EXPECT_TRUE(outcome.message.starts_with("sleep reached its deadline after ")) << outcome.message;
}

TEST(SleepTask, DeadlineBeforeTheWakeTimeEndsTheSleepAtTheDeadline) {
  TaskContext ctx;
  ctx.deadline = steady_clock::now() + milliseconds(30);
  const auto outcome = run_sleep(parse_object(R"({"ms":600000})"), ctx);
  const auto now = steady_clock::now();
  EXPECT_GE(now, ctx.deadline);
  EXPECT_LT(now - ctx.deadline, seconds(5));
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
}

TEST(SleepTask, DeadlineAfterTheWakeTimeDoesNotInterfere) {
  TaskContext ctx;
  ctx.deadline = steady_clock::now() + seconds(60);
  const auto outcome = run_sleep(parse_object(R"({"ms":5})"), ctx);
  ASSERT_TRUE(outcome.ok) << outcome.message;
  EXPECT_EQ(outcome.result_json, R"({"slept_ms":5})");
}

struct BadData {
  const char* name;
  const char* json;
};

class SleepTaskRejects : public testing::TestWithParam<BadData> {};

TEST_P(SleepTaskRejects, WithInvalidTaskData) {
  const auto outcome = run_sleep(parse_object(GetParam().json), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, "'ms' must be an integer from 0 to 600000");
}

INSTANTIATE_TEST_SUITE_P(
    SleepTask, SleepTaskRejects,
    testing::Values(BadData{"MissingMs", "{}"}, BadData{"Negative", R"({"ms":-1})"},
                    BadData{"AboveMax", R"({"ms":600001})"}, BadData{"OneE30", R"({"ms":1e30})"},
                    BadData{"TwoToThe63", R"({"ms":9223372036854775808})"},
                    BadData{"Fraction", R"({"ms":10.5})"}, BadData{"WholeFloat", R"({"ms":10.0})"},
                    BadData{"NumericString", R"({"ms":"10"})"}, BadData{"Bool", R"({"ms":true})"},
                    BadData{"Null", R"({"ms":null})"}),
    [](const testing::TestParamInfo<BadData>& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace sd::tasks
