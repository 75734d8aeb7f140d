#include "proto/error_code.hpp"

#include <array>
#include <utility>

namespace sd::proto {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 14> kNames{{
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
}};

}  // namespace

std::string_view to_string(ErrorCode code) noexcept {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text) noexcept {
  for (const auto& [c, name] : kNames) {
    if (name == text) return c;
  }
  return std::nullopt;
}

}  // namespace sd::proto
