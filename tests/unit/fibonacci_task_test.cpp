#include "tasks/fibonacci_task.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <string>
#include <string_view>

#include "tasks/sha256.hpp"

namespace sd::tasks {
namespace {

boost::json::object parse_object(std::string_view json) { return boost::json::parse(json).as_object(); }

std::string fibonacci(std::string_view json) {
  const auto outcome = run_fibonacci(parse_object(json), TaskContext{});
  EXPECT_TRUE(outcome.ok) << outcome.message;
  return outcome.result_json;
}

TEST(FibonacciTask, ZeroGivesEmptySequence) {
  EXPECT_EQ(fibonacci(R"({"n":0})"), R"({"sequence":[]})");
}

TEST(FibonacciTask, OneGivesJustZero) { EXPECT_EQ(fibonacci(R"({"n":1})"), R"({"sequence":[0]})"); }

TEST(FibonacciTask, TwoGivesZeroOne) { EXPECT_EQ(fibonacci(R"({"n":2})"), R"({"sequence":[0,1]})"); }

TEST(FibonacciTask, TenGivesTheFirstTen) {
  EXPECT_EQ(fibonacci(R"({"n":10})"), R"({"sequence":[0,1,1,2,3,5,8,13,21,34]})");
}

TEST(FibonacciTask, MissingNDefaultsToTen) {
  EXPECT_EQ(fibonacci("{}"), R"({"sequence":[0,1,1,2,3,5,8,13,21,34]})");
}

TEST(FibonacciTask, HundredEndsWith218922995834555169026) {
  const std::string result = fibonacci(R"({"n":100})");
  EXPECT_TRUE(result.ends_with(",135301852344706746049,218922995834555169026]}")) << result;
  // python3 -c 'import json,hashlib; f=[0,1]; [f.append(f[-1]+f[-2]) for _ in range(98)];
  //   print(hashlib.sha256(json.dumps({"sequence":f},separators=(",",":")).encode()).hexdigest())'
  Sha256 sha;
  EXPECT_EQ(to_hex(sha.digest(result)),
            "50f79cd0ab6d4cdd1d4d5585d185ab36c0c845cf4546c1746ed0d8c4974cfd7b");
}

TEST(FibonacciTask, NumbersBeyondUint64StayExactIntegers) {
  // F(93) = 12200160415121876738 is the last that fits in uint64; F(94) does not.
  const std::string result = fibonacci(R"({"n":95})");
  EXPECT_TRUE(result.ends_with(",12200160415121876738,19740274219868223167]}")) << result;
}

TEST(FibonacciTask, TenThousandIsValidJsonWithTenThousandNumbersAsPythonWritesThem) {
  const auto start = std::chrono::steady_clock::now();
  const std::string result = fibonacci(R"({"n":10000})");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // Well under a second in a release build; generous for sanitizer builds.
  EXPECT_LT(elapsed, std::chrono::seconds(5));

  const auto parsed = boost::json::parse(result);
  ASSERT_TRUE(parsed.is_object());
  EXPECT_EQ(parsed.as_object().at("sequence").as_array().size(), 10000U);
  // F(9999) has 2090 digits and starts with 20793608237133498072.
  const auto last = result.substr(result.rfind(',') + 1);
  EXPECT_EQ(last.size(), 2090U + 2U);  // plus "]}"
  EXPECT_TRUE(last.starts_with("20793608237133498072"));
  // The whole text, byte for byte, against Python's json.dumps(separators=(",",":")).
  EXPECT_EQ(result.size(), 10459859U);
  Sha256 sha;
  EXPECT_EQ(to_hex(sha.digest(result)),
            "0d33864ded9c5a006e73b8405ea60e6415629b366b7794f0564d69751af661c7");
}

struct BadData {
  const char* name;
  const char* json;
};

class FibonacciTaskRejects : public testing::TestWithParam<BadData> {};

TEST_P(FibonacciTaskRejects, WithInvalidTaskData) {
  const auto outcome = run_fibonacci(parse_object(GetParam().json), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, "'n' must be an integer from 0 to 10000");
}

INSTANTIATE_TEST_SUITE_P(
    FibonacciTask, FibonacciTaskRejects,
    testing::Values(BadData{"Negative", R"({"n":-1})"}, BadData{"AboveMax", R"({"n":10001})"},
                    BadData{"OneE30", R"({"n":1e30})"},
                    BadData{"TwoToThe63", R"({"n":9223372036854775808})"},
                    BadData{"Fraction", R"({"n":10.5})"}, BadData{"WholeFloat", R"({"n":10.0})"},
                    BadData{"NumericString", R"({"n":"10"})"}, BadData{"Bool", R"({"n":true})"},
                    BadData{"Null", R"({"n":null})"}, BadData{"Array", R"({"n":[10]})"}),
    [](const testing::TestParamInfo<BadData>& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace sd::tasks
