#include "tasks/compute_task.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

namespace sd::tasks {
namespace {

using std::chrono::steady_clock;

boost::json::object parse_object(std::string_view json) { return boost::json::parse(json).as_object(); }

std::string compute(std::string_view json) {
  const auto outcome = run_compute(parse_object(json), TaskContext{});
  EXPECT_TRUE(outcome.ok) << outcome.message;
  return outcome.result_json;
}

// Expected digests come from Python:
//   d = seed.encode(); for _ in range(n): d = hashlib.sha256(d).digest(); print(d.hex())

TEST(ComputeTask, ThreeIterationsOfEmptySeed) {
  EXPECT_EQ(compute(R"({"iterations":3,"seed":""})"),
            R"({"digest":"aa6ac2d4961882f42a345c7615f4133dde8e6d6e7c1b6b40ae4ff6ee52c393d0","iterations":3})");
}

TEST(ComputeTask, SeedDefaultsToEmpty) {
  EXPECT_EQ(compute(R"({"iterations":3})"),
            R"({"digest":"aa6ac2d4961882f42a345c7615f4133dde8e6d6e7c1b6b40ae4ff6ee52c393d0","iterations":3})");
}

TEST(ComputeTask, OneIterationOfAbcIsSha256OfAbc) {
  EXPECT_EQ(compute(R"({"iterations":1,"seed":"abc"})"),
            R"({"digest":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","iterations":1})");
}

TEST(ComputeTask, ThousandIterationsMatchPython) {
  EXPECT_EQ(compute(R"({"iterations":1000,"seed":"seed"})"),
            R"({"digest":"6bbcaffe615c09f40d02994c9d8c6a57999352513589256c243b3256db64a615","iterations":1000})");
}

TEST(ComputeTask, Utf8SeedIsHashedAsItsBytes) {
  EXPECT_EQ(compute(R"({"iterations":1000,"seed":"canción 😀"})"),
            R"({"digest":"fbc978bb12e09b98973c19a76c7b12d3ae5b76f358712ddaa0fe8266e5d09ce3","iterations":1000})");
}

TEST(ComputeTask, IterationCountsAroundTheCancelCheckMatchPython) {
  // The loop checks for cancellation every 4096 iterations; no step may be lost there.
  EXPECT_EQ(compute(R"({"iterations":4096,"seed":"x"})"),
            R"({"digest":"7a8fa9cc90a6cb95a0ea3746f72f5f61a4feda6fff53b67e3799c7422a29828d","iterations":4096})");
  EXPECT_EQ(compute(R"({"iterations":4097,"seed":"x"})"),
            R"({"digest":"18782b91381bdf63c7e736a3a27e613f9b9b6601daa3600e088b65d6337a98c7","iterations":4097})");
}

TEST(ComputeTask, TwoHundredThousandIterationsMatchPython) {
  EXPECT_EQ(compute(R"({"iterations":200000,"seed":"bench"})"),
            R"({"digest":"8f91ed7a30c67f153176394928f07ac22296330f6a07c6646ce9aa973da3a16c","iterations":200000})");
}

TEST(ComputeTask, DeadlineInThePastIsTimeoutBeforeAnyWork) {
  TaskContext ctx;
  ctx.deadline = steady_clock::now() - std::chrono::seconds(1);
  const auto outcome = run_compute(parse_object(R"({"iterations":100000000})"), ctx);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
  EXPECT_EQ(outcome.message, "task cancelled after 0 iterations");
}

TEST(ComputeTask, StopRequestedBeforeStartIsTimeout) {
  std::stop_source stop;
  stop.request_stop();
  const auto outcome = run_compute(parse_object(R"({"iterations":100000000})"), TaskContext{stop.get_token()});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
  EXPECT_EQ(outcome.message, "task cancelled after 0 iterations");
}

TEST(ComputeTask, StopRequestedWhileRunningEndsItQuickly) {
  // 10^8 iterations take many seconds; the stop must cut that short wherever it lands.
  std::stop_source stop;
  TaskOutcome outcome;
  const auto start = steady_clock::now();
  {
    std::jthread runner([&] {
      outcome = run_compute(parse_object(R"({"iterations":100000000})"), TaskContext{stop.get_token()});
    });
    stop.request_stop();
  }
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
  EXPECT_TRUE(outcome.message.starts_with("task cancelled after ")) << outcome.message;
}

TEST(ComputeTask, DeadlineDuringTheRunEndsItWithTheIterationsDone) {
  TaskContext ctx;
  ctx.deadline = steady_clock::now() + std::chrono::milliseconds(20);
  const auto outcome = run_compute(parse_object(R"({"iterations":100000000})"), ctx);
  EXPECT_LT(steady_clock::now() - ctx.deadline, std::chrono::seconds(5));
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::timeout);
  // The check runs every 4096 iterations, so K is a positive multiple of 4096.
  const std::string prefix = "task cancelled after ";
  ASSERT_TRUE(outcome.message.starts_with(prefix)) << outcome.message;
  const auto done = std::stoll(outcome.message.substr(prefix.size()));
  EXPECT_GT(done, 0);
  EXPECT_EQ(done % 4096, 0);
}

struct BadData {
  const char* name;
  const char* json;
  const char* message;
};

constexpr const char* kIterations = "'iterations' must be an integer from 1 to 100000000";
constexpr const char* kSeed = "'seed' must be a string";

class ComputeTaskRejects : public testing::TestWithParam<BadData> {};

TEST_P(ComputeTaskRejects, WithInvalidTaskData) {
  const auto outcome = run_compute(parse_object(GetParam().json), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    ComputeTask, ComputeTaskRejects,
    testing::Values(
        BadData{"MissingIterations", R"({"seed":"a"})", kIterations},
        BadData{"ZeroIterations", R"({"iterations":0})", kIterations},
        BadData{"NegativeIterations", R"({"iterations":-1})", kIterations},
        BadData{"TooManyIterations", R"({"iterations":100000001})", kIterations},
        BadData{"OneE30Iterations", R"({"iterations":1e30})", kIterations},
        BadData{"TwoToThe63Iterations", R"({"iterations":9223372036854775808})", kIterations},
        BadData{"FractionIterations", R"({"iterations":10.5})", kIterations},
        BadData{"WholeFloatIterations", R"({"iterations":10.0})", kIterations},
        BadData{"StringIterations", R"({"iterations":"10"})", kIterations},
        BadData{"BoolIterations", R"({"iterations":true})", kIterations},
        BadData{"NullIterations", R"({"iterations":null})", kIterations},
        BadData{"NumberSeed", R"({"iterations":1,"seed":5})", kSeed},
        BadData{"NullSeed", R"({"iterations":1,"seed":null})", kSeed},
        BadData{"BoolSeed", R"({"iterations":1,"seed":true})", kSeed},
        BadData{"ArraySeed", R"({"iterations":1,"seed":["a"]})", kSeed}),
    [](const testing::TestParamInfo<BadData>& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace sd::tasks
