#pragma once
/// Error codes of the wire protocol (docs/protocol.md, "Error codes").

#include <optional>
#include <string_view>

namespace sd::proto {

enum class ErrorCode {
  bad_json,
  message_too_large,
  unknown_message_type,
  invalid_task,
  unknown_task_type,
  invalid_task_data,
  duplicate_task_id,
  worker_lost,
  timeout,
  queue_full,
  server_shutdown,
  unauthorized,
  too_many_connections,
  internal,
};

/// The code as written on the wire, e.g. "bad_json".
std::string_view to_string(ErrorCode code) noexcept;

/// Parses a wire code; nullopt for an unknown one.
std::optional<ErrorCode> error_code_from_string(std::string_view text) noexcept;

}  // namespace sd::proto
