#include "proto/error_code.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sd::proto {
namespace {

/// Every code and its wire spelling (docs/protocol.md, "Error codes").
const std::vector<std::pair<ErrorCode, std::string_view>> kAllCodes = {
    {ErrorCode::bad_json, "bad_json"},
    {ErrorCode::message_too_large, "message_too_large"},
    {ErrorCode::unknown_message_type, "unknown_message_type"},
    {ErrorCode::invalid_task, "invalid_task"},
    {ErrorCode::unknown_task_type, "unknown_task_type"},
    {ErrorCode::invalid_task_data, "invalid_task_data"},
    {ErrorCode::duplicate_task_id, "duplicate_task_id"},
    {ErrorCode::worker_lost, "worker_lost"},
    {ErrorCode::timeout, "timeout"},
    {ErrorCode::queue_full, "queue_full"},
    {ErrorCode::server_shutdown, "server_shutdown"},
    {ErrorCode::unauthorized, "unauthorized"},
    {ErrorCode::too_many_connections, "too_many_connections"},
    {ErrorCode::internal, "internal"},
};

TEST(ErrorCode, EveryCodeHasItsWireName) {
  for (const auto& [code, name] : kAllCodes) EXPECT_EQ(to_string(code), name);
}

TEST(ErrorCode, EveryWireNameParsesBackToItsCode) {
  for (const auto& [code, name] : kAllCodes) {
    const auto parsed = error_code_from_string(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, code) << name;
  }
}

TEST(ErrorCode, ToStringAndFromStringRoundTripForEveryEnumerator) {
  // Walks the enum itself, so a code added without a name is caught.
  for (int i = static_cast<int>(ErrorCode::bad_json); i <= static_cast<int>(ErrorCode::internal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    EXPECT_EQ(error_code_from_string(to_string(code)), code) << i;
  }
}

TEST(ErrorCode, WireNamesAreDistinct) {
  std::set<std::string_view> names;
  for (const auto& [code, name] : kAllCodes) names.insert(to_string(code));
  EXPECT_EQ(names.size(), kAllCodes.size());
}

TEST(ErrorCode, UnknownNamesAreNullopt) {
  for (std::string_view text : {"", "BAD_JSON", "bad-json", "bad_json ", " bad_json", "nope", "internal\n"}) {
    EXPECT_EQ(error_code_from_string(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(ErrorCode, AValueOutsideTheEnumIsWrittenAsInternal) {
  EXPECT_EQ(to_string(static_cast<ErrorCode>(999)), "internal");
}

}  // namespace
}  // namespace sd::proto
