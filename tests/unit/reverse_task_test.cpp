#include "tasks/reverse_task.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>
#include <string_view>

namespace sd::tasks {
namespace {

boost::json::object parse_object(std::string_view json) { return boost::json::parse(json).as_object(); }

std::string reverse(std::string_view json) {
  const auto outcome = run_reverse(parse_object(json), TaskContext{});
  EXPECT_TRUE(outcome.ok) << outcome.message;
  return outcome.result_json;
}

TEST(ReverseTask, CancionWithEmojiKeepsEachCodePointWhole) {
  EXPECT_EQ(reverse(R"({"text":"canción 😀"})"), R"({"reversed":"😀 nóicnac"})");
}

TEST(ReverseTask, EscapedInputGivesTheSameResult) {
  EXPECT_EQ(reverse(R"({"text":"canci\u00f3n \ud83d\ude00"})"), R"({"reversed":"😀 nóicnac"})");
}

TEST(ReverseTask, EmptyStaysEmpty) { EXPECT_EQ(reverse(R"({"text":""})"), R"({"reversed":""})"); }

TEST(ReverseTask, Ascii) {
  EXPECT_EQ(reverse(R"({"text":"Hola Mundo"})"), R"({"reversed":"odnuM aloH"})");
}

TEST(ReverseTask, ThreeByteCharacters) {
  EXPECT_EQ(reverse(R"({"text":"€日本"})"), R"({"reversed":"本日€"})");
}

TEST(ReverseTask, CombiningMarksMoveAsCodePointsLikePython) {
  // Python: "e\u0301x"[::-1] == "x\u0301e"; code points, not grapheme clusters.
  EXPECT_EQ(reverse(R"({"text":"e\u0301x"})"), "{\"reversed\":\"x\xcc\x81" "e\"}");
}

TEST(ReverseTask, EscapesQuotesBackslashesAndControlCharactersInTheResult) {
  EXPECT_EQ(reverse(R"({"text":"a\"b\\c\nd\u0001"})"), R"({"reversed":"\u0001d\nc\\b\"a"})");
}

TEST(ReverseTask, ReversingTwiceGivesTheTextBack) {
  const auto once = boost::json::parse(reverse(R"({"text":"ñandú 🦩 x€"})"));
  const auto twice_json = std::string(R"({"text":)") +
                          boost::json::serialize(once.at("reversed")) + "}";
  EXPECT_EQ(reverse(twice_json), R"({"reversed":"ñandú 🦩 x€"})");
}

TEST(ReverseTask, InvalidUtf8BuiltInCodeIsReversedBytewiseWithoutCrashing) {
  // The JSON parser rejects invalid UTF-8, but an object built in code may hold it:
  // a stray continuation byte, a lone lead byte and a truncated 3-byte sequence.
  boost::json::object fields;
  fields["text"] = std::string_view("\x80" "a\xff" "b\xe2\x82");
  const auto outcome = run_reverse(fields, TaskContext{});
  ASSERT_TRUE(outcome.ok);
  EXPECT_EQ(outcome.result_json, std::string_view("{\"reversed\":\"\x82\xe2" "b\xff" "a\x80\"}"));
}

struct BadData {
  const char* name;
  const char* json;
};

class ReverseTaskRejects : public testing::TestWithParam<BadData> {};

TEST_P(ReverseTaskRejects, WithInvalidTaskData) {
  const auto outcome = run_reverse(parse_object(GetParam().json), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, "'text' must be a string");
}

INSTANTIATE_TEST_SUITE_P(
    ReverseTask, ReverseTaskRejects,
    testing::Values(BadData{"MissingText", "{}"}, BadData{"NumberText", R"({"text":12})"},
                    BadData{"NullText", R"({"text":null})"},
                    BadData{"BoolText", R"({"text":false})"},
                    BadData{"ArrayText", R"({"text":["a","b"]})"}),
    [](const testing::TestParamInfo<BadData>& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace sd::tasks
