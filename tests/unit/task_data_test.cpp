#include "tasks/task_data.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace sd::tasks {
namespace {

boost::json::object parse_object(std::string_view json) { return boost::json::parse(json).as_object(); }

constexpr std::string_view kCountMessage = "'count' must be an integer from 1 to 100";

// ---- strings ---------------------------------------------------------------

TEST(TaskData, RequiredStringReturnsTheText) {
  const auto fields = parse_object(R"({"text":"canción"})");
  const auto text = required_string(fields, "text");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "canción");
}

TEST(TaskData, RequiredStringAcceptsTheEmptyString) {
  const auto fields = parse_object(R"({"text":""})");
  const auto text = required_string(fields, "text");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "");
}

TEST(TaskData, RequiredStringKeepsEmbeddedNulBytes) {
  const auto fields = parse_object(R"({"text":"a\u0000b"})");
  const auto text = required_string(fields, "text");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, std::string_view("a\0b", 3));
}

TEST(TaskData, RequiredStringMissingNamesTheField) {
  const auto text = required_string(parse_object("{}"), "text");
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error, "'text' must be a string");
}

TEST(TaskData, RequiredStringRejectsEveryOtherKind) {
  for (const auto* json : {R"({"text":5})", R"({"text":5.5})", R"({"text":true})",
                           R"({"text":null})", R"({"text":["a"]})", R"({"text":{"a":"b"}})"}) {
    const auto text = required_string(parse_object(json), "text");
    EXPECT_FALSE(text) << json;
    EXPECT_EQ(text.error, "'text' must be a string") << json;
  }
}

TEST(TaskData, OptionalStringAbsentGivesTheFallback) {
  const auto seed = optional_string(parse_object("{}"), "seed", "default");
  ASSERT_TRUE(seed);
  EXPECT_EQ(*seed, "default");
}

TEST(TaskData, OptionalStringPresentGivesItsValue) {
  const auto fields = parse_object(R"({"seed":"abc"})");
  const auto seed = optional_string(fields, "seed", "default");
  ASSERT_TRUE(seed);
  EXPECT_EQ(*seed, "abc");
}

TEST(TaskData, OptionalStringNullIsRejectedNotDefaulted) {
  const auto seed = optional_string(parse_object(R"({"seed":null})"), "seed", "");
  ASSERT_FALSE(seed);
  EXPECT_EQ(seed.error, "'seed' must be a string");
}

// ---- integers --------------------------------------------------------------

TEST(TaskData, RequiredIntegerAcceptsBothEndsOfItsRange) {
  const auto low = required_integer(parse_object(R"({"count":1})"), "count", 1, 100);
  const auto high = required_integer(parse_object(R"({"count":100})"), "count", 1, 100);
  ASSERT_TRUE(low);
  ASSERT_TRUE(high);
  EXPECT_EQ(*low, 1);
  EXPECT_EQ(*high, 100);
}

TEST(TaskData, RequiredIntegerAcceptsAnUnsignedKindValueInRange) {
  // The parser never makes one, but a value built in code can be uint64.
  boost::json::object fields;
  fields["count"] = std::uint64_t{42};
  const auto count = required_integer(fields, "count", 1, 100);
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, 42);
}

TEST(TaskData, RequiredIntegerAcceptsTheWholeInt64Range) {
  const auto count = required_integer(parse_object(R"({"count":-9223372036854775808})"), "count",
                                      INT64_MIN, INT64_MAX);
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, INT64_MIN);
}

TEST(TaskData, RequiredIntegerMissingNamesTheFieldAndRange) {
  const auto count = required_integer(parse_object("{}"), "count", 1, 100);
  ASSERT_FALSE(count);
  EXPECT_EQ(count.error, kCountMessage);
}

// Every JSON value that is not an integer in [1, 100].
struct BadInteger {
  const char* name;
  const char* json;
};

class TaskDataRejectsInteger : public testing::TestWithParam<BadInteger> {};

TEST_P(TaskDataRejectsInteger, WithTheRangeInTheMessage) {
  const auto fields = parse_object(std::string(R"({"count":)") + GetParam().json + "}");
  const auto required = required_integer(fields, "count", 1, 100);
  ASSERT_FALSE(required);
  EXPECT_EQ(required.error, kCountMessage);
  const auto optional = optional_integer(fields, "count", 1, 100, 10);
  ASSERT_FALSE(optional);
  EXPECT_EQ(optional.error, kCountMessage);
  const auto outcome = optional.failure();
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, kCountMessage);
}

INSTANTIATE_TEST_SUITE_P(
    TaskData, TaskDataRejectsInteger,
    testing::Values(BadInteger{"BelowMin", "0"}, BadInteger{"AboveMax", "101"},
                    BadInteger{"Negative", "-1"}, BadInteger{"Int64Min", "-9223372036854775808"},
                    BadInteger{"Int64Max", "9223372036854775807"},
                    BadInteger{"TwoToThe63", "9223372036854775808"},
                    BadInteger{"Uint64Max", "18446744073709551615"},
                    BadInteger{"TwoToThe64", "18446744073709551616"},
                    BadInteger{"OneE30", "1e30"}, BadInteger{"MinusOneE30", "-1e30"},
                    BadInteger{"Fraction", "10.5"}, BadInteger{"WholeFloat", "10.0"},
                    BadInteger{"Exponent", "1e1"}, BadInteger{"NumericString", "\"10\""},
                    BadInteger{"True", "true"}, BadInteger{"False", "false"},
                    BadInteger{"Null", "null"}, BadInteger{"Array", "[10]"},
                    BadInteger{"Object", "{\"v\":10}"}),
    [](const testing::TestParamInfo<BadInteger>& param) { return std::string(param.param.name); });

TEST(TaskData, OptionalIntegerAbsentGivesTheFallback) {
  const auto n = optional_integer(parse_object("{}"), "n", 0, 10000, 10);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 10);
}

TEST(TaskData, OptionalIntegerPresentGivesItsValue) {
  const auto n = optional_integer(parse_object(R"({"n":0})"), "n", 0, 10000, 10);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0);
}

TEST(TaskData, ExtraFieldsAreIgnored) {
  const auto n = optional_integer(parse_object(R"({"n":3,"extra":"x"})"), "n", 0, 10000, 10);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3);
}

TEST(TaskData, FailureIsInvalidTaskDataWithTheMessage) {
  const auto text = required_string(parse_object("{}"), "text");
  const auto outcome = text.failure();
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, "'text' must be a string");
  EXPECT_TRUE(outcome.result_json.empty());
}

}  // namespace
}  // namespace sd::tasks
