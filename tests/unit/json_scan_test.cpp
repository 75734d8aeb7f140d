#include "proto/json_scan.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

namespace sd::proto {
namespace {

using Raw = std::optional<std::string_view>;

TEST(JsonScan, NestedObjectValueIsReturnedVerbatim) {
  EXPECT_EQ(raw_member(R"({"a":1,"result":{"x":[1,2]}})", "result"), Raw(R"({"x":[1,2]})"));
}

TEST(JsonScan, NestedArraysAndObjectsAreSkippedAsOneValue) {
  const std::string_view json = R"({"a":[1,[2,{"b":"]"}],{}],"c":{"d":{"e":[]}},"f":2})";
  EXPECT_EQ(raw_member(json, "a"), Raw(R"([1,[2,{"b":"]"}],{}])"));
  EXPECT_EQ(raw_member(json, "c"), Raw(R"({"d":{"e":[]}})"));
  EXPECT_EQ(raw_member(json, "f"), Raw("2"));
}

TEST(JsonScan, StringsWithBracesQuotesAndBackslashesAreSkippedWhole) {
  const std::string_view json = R"({"s":"}{][\"\\","t":true,"u":{"v":"}\"{"},"w":"\\"})";
  EXPECT_EQ(raw_member(json, "s"), Raw(R"("}{][\"\\")"));
  EXPECT_EQ(raw_member(json, "t"), Raw("true"));
  EXPECT_EQ(raw_member(json, "u"), Raw(R"({"v":"}\"{"})"));
  EXPECT_EQ(raw_member(json, "w"), Raw(R"("\\")"));
}

TEST(JsonScan, FirstMiddleLastAndOnlyMembersAreFound) {
  const std::string_view json = R"({"first":"1","middle":2,"last":[3]})";
  EXPECT_EQ(raw_member(json, "first"), Raw(R"("1")"));
  EXPECT_EQ(raw_member(json, "middle"), Raw("2"));
  EXPECT_EQ(raw_member(json, "last"), Raw("[3]"));
  EXPECT_EQ(raw_member(R"({"only":{"k":null}})", "only"), Raw(R"({"k":null})"));
}

TEST(JsonScan, ScalarsOfEveryKindEndAtTheirDelimiter) {
  const std::string_view json = R"({"n":-1.5e+10,"z":0,"t":true,"f":false,"x":null})";
  EXPECT_EQ(raw_member(json, "n"), Raw("-1.5e+10"));
  EXPECT_EQ(raw_member(json, "z"), Raw("0"));
  EXPECT_EQ(raw_member(json, "t"), Raw("true"));
  EXPECT_EQ(raw_member(json, "f"), Raw("false"));
  EXPECT_EQ(raw_member(json, "x"), Raw("null"));
}

TEST(JsonScan, IntegersBeyondSixtyFourBitsAreKeptAsWritten) {
  EXPECT_EQ(raw_member(R"({"type":"RESULT","result":{"sequence":[0,1,218922995834555169026]}})", "result"),
            Raw(R"({"sequence":[0,1,218922995834555169026]})"));
  EXPECT_EQ(raw_member(R"({"big":123456789012345678901234567890})", "big"), Raw("123456789012345678901234567890"));
}

TEST(JsonScan, WhitespaceAroundKeysColonsAndValuesIsAllowed) {
  const std::string_view json = " \n{ \"a\" :\t[ 1 , 2 ] ,\r\n \"b\" : { } , \"c\" : 7 \n} ";
  EXPECT_EQ(raw_member(json, "a"), Raw("[ 1 , 2 ]"));
  EXPECT_EQ(raw_member(json, "b"), Raw("{ }"));
  EXPECT_EQ(raw_member(json, "c"), Raw("7"));
}

TEST(JsonScan, MissingKeyIsNullopt) {
  EXPECT_EQ(raw_member(R"({"a":1,"b":{"c":2}})", "c"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"a":1})", ""), std::nullopt);
  EXPECT_EQ(raw_member("{}", "a"), std::nullopt);
  EXPECT_EQ(raw_member("{ }", "a"), std::nullopt);
}

TEST(JsonScan, OnlyTopLevelMembersMatch) {
  EXPECT_EQ(raw_member(R"({"outer":{"key":1},"list":[{"key":2}]})", "key"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"outer":{"key":1},"key":3})", "key"), Raw("3"));
}

TEST(JsonScan, AKeyAppearingAsAStringValueDoesNotMatch) {
  EXPECT_EQ(raw_member(R"({"a":"key","key":5})", "key"), Raw("5"));
  EXPECT_EQ(raw_member(R"({"a":"key"})", "key"), std::nullopt);
}

TEST(JsonScan, KeysMatchWholeNotByPrefix) {
  EXPECT_EQ(raw_member(R"({"keys":1,"ke":2,"key":3})", "key"), Raw("3"));
}

TEST(JsonScan, AKeyWrittenWithAnEscapeMakesTheAnswerUnknown) {
  // It may spell the key asked for, as a duplicate of it.
  EXPECT_EQ(raw_member(R"({"k\u0065y":1})", "key"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"key":2,"k\u0065y":1})", "key"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"a\"b":1,"key":2})", "key"), std::nullopt);
}

TEST(JsonScan, DuplicateKeysAreNullopt) {
  // A parser keeps the last value; the first one found here would disagree with it.
  EXPECT_EQ(raw_member(R"({"a":1,"a":2})", "a"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"a":1,"b":{"a":3},"a":2})", "a"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"a":1,"b":2,"b":3})", "a"), Raw("1")) << "another key's duplicates do not matter";
}

TEST(JsonScan, EmptyStringValueIsTwoQuotes) {
  EXPECT_EQ(raw_member(R"({"a":"","b":1})", "a"), Raw(R"("")"));
}

TEST(JsonScan, NonObjectInputIsNullopt) {
  for (std::string_view json : {"", "   ", "[1,2]", R"("a")", "1", "null", "true", R"([{"a":1}])"}) {
    EXPECT_EQ(raw_member(json, "a"), std::nullopt) << json;
  }
}

TEST(JsonScan, TruncatedInputIsNullopt) {
  for (std::string_view json : {"{", R"({")", R"({"a)", R"({"a")", R"({"a":)", R"({"a": )", R"({"a":"abc)",
                                R"({"a":"abc\)", R"({"a":{"b":1)", R"({"a":[1,2)", R"({"a":[{"b":"]"})"}) {
    EXPECT_EQ(raw_member(json, "a"), std::nullopt) << json;
  }
}

TEST(JsonScan, InputTruncatedBeforeTheKeyIsNullopt) {
  for (std::string_view json : {R"({"a":1)", R"({"a":1,)", R"({"a":1, )", R"({"a":{"x":1},"b)", R"({"a":"x" )"}) {
    EXPECT_EQ(raw_member(json, "b"), std::nullopt) << json;
  }
}

TEST(JsonScan, MalformedSeparatorsAreNullopt) {
  EXPECT_EQ(raw_member(R"({"a" 1})", "a"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"a":1 "b":2})", "b"), std::nullopt);
  EXPECT_EQ(raw_member(R"({a:1})", "a"), std::nullopt);
}

// The header promises nullopt "on anything unexpected ... rather than guessing", and a
// scalar that runs into the end of the input may be cut short ("12" of "123"), like the
// strings, objects and arrays cut short above.
TEST(JsonScan, ScalarRunningIntoTheEndOfTruncatedInputIsNullopt) {
  EXPECT_EQ(raw_member(R"({"a":12)", "a"), std::nullopt);
  EXPECT_EQ(raw_member(R"({"a":tru)", "a"), std::nullopt);
}

}  // namespace
}  // namespace sd::proto
