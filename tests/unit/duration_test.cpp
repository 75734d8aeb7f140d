#include "common/duration.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string_view>

namespace sd {
namespace {

using std::chrono::milliseconds;
using Parsed = std::optional<milliseconds>;

TEST(Duration, MillisecondsSecondsMinutesHoursAndDaysParse) {
  EXPECT_EQ(parse_duration("500ms"), Parsed(milliseconds(500)));
  EXPECT_EQ(parse_duration("2s"), Parsed(milliseconds(2'000)));
  EXPECT_EQ(parse_duration("5m"), Parsed(milliseconds(300'000)));
  EXPECT_EQ(parse_duration("5min"), Parsed(milliseconds(300'000)));
  EXPECT_EQ(parse_duration("24h"), Parsed(milliseconds(86'400'000)));
  EXPECT_EQ(parse_duration("7d"), Parsed(milliseconds(604'800'000)));
}

TEST(Duration, FractionsAreAllowed) {
  EXPECT_EQ(parse_duration("1.5s"), Parsed(milliseconds(1'500)));
  EXPECT_EQ(parse_duration("0.25h"), Parsed(milliseconds(900'000)));
  EXPECT_EQ(parse_duration("0.5m"), Parsed(milliseconds(30'000)));
}

TEST(Duration, ABareNumberIsMilliseconds) {
  EXPECT_EQ(parse_duration("250"), Parsed(milliseconds(250)));
  EXPECT_EQ(parse_duration("0"), Parsed(milliseconds(0)));
}

TEST(Duration, ZeroWithAUnitIsZero) {
  EXPECT_EQ(parse_duration("0s"), Parsed(milliseconds(0)));
  EXPECT_EQ(parse_duration("0ms"), Parsed(milliseconds(0)));
}

TEST(Duration, EmptyNegativeAndNonNumbersAreRejected) {
  for (std::string_view text : {"", "-1s", "-1", "-0.5ms", "abc", "s", "ms", " 5s", "5 s", "5s ", "+5s"}) {
    EXPECT_EQ(parse_duration(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(Duration, UnknownUnitsAreRejected) {
  for (std::string_view text : {"5x", "5S", "5MS", "5sec", "5hours", "5w", "5y", "5ss", "1.5.5s"}) {
    EXPECT_EQ(parse_duration(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(Duration, HugeAndNonFiniteValuesAreRejected) {
  for (std::string_view text : {"1e400", "1e400ms", "inf", "infs", "nan", "nanms", "99999999999999d"}) {
    EXPECT_EQ(parse_duration(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(Duration, FormatPicksTheLargestWholeUnit) {
  EXPECT_EQ(format_duration(milliseconds(500)), "500ms");
  EXPECT_EQ(format_duration(milliseconds(2'000)), "2s");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "90s");
  EXPECT_EQ(format_duration(milliseconds(300'000)), "5m");
  EXPECT_EQ(format_duration(milliseconds(86'400'000)), "24h");
  EXPECT_EQ(format_duration(milliseconds(604'800'000)), "168h");
}

TEST(Duration, FormatKeepsMillisecondsWhenNoUnitDividesEvenly) {
  EXPECT_EQ(format_duration(milliseconds(1'500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(1)), "1ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
}

TEST(Duration, FormattedDurationsParseBackToTheSameValue) {
  for (long long ms : {0LL, 1LL, 999LL, 1'000LL, 1'500LL, 60'000LL, 61'000LL, 3'600'000LL, 86'400'000LL,
                       604'800'000LL}) {
    EXPECT_EQ(parse_duration(format_duration(milliseconds(ms))), Parsed(milliseconds(ms))) << ms;
  }
}

}  // namespace
}  // namespace sd
