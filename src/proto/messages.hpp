#pragma once
/// The messages of the wire protocol (docs/protocol.md) and their JSON codec.
///
/// Payloads the server only routes (task_data, a result) are kept as raw JSON text, so
/// they pass through the server without being rebuilt, and so results that
/// boost::json cannot hold (integers of any size) survive unchanged.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proto/error_code.hpp"

namespace sd::proto {

/// What the client asks the server to answer a TASK with.
enum class ReplyMode { result, ack };

/// TASK: client -> server (task_id optional) and server -> worker (task_id and attempt set).
struct TaskMsg {
  std::string task_id;
  std::string task_type;
  std::string task_data;  ///< raw JSON text of an object
  int priority = 0;
  std::optional<std::int64_t> timeout_ms;
  std::optional<int> max_retries;
  std::uint32_t attempt = 0;  ///< set by the server when dispatching; 0 = absent
  ReplyMode reply = ReplyMode::result;
};

/// RESULT: worker -> server (attempt echoed) and server -> client.
struct ResultMsg {
  std::string task_id;
  bool ok = false;
  std::string result;  ///< raw JSON text of the "result" value, when ok
  ErrorCode error_code = ErrorCode::internal;  ///< when !ok
  std::string error_message;                   ///< when !ok
  std::string worker_id;                       ///< may be empty
  std::optional<double> processing_time;       ///< seconds
  std::uint32_t attempt = 0;                   ///< 0 = absent
};

/// ERROR: a message that could not be handled, not tied to a running task.
struct ErrorMsg {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  std::string task_id;  ///< empty when unknown
};

struct WorkerRegisterMsg {
  int threads = 4;
  std::optional<int> prefetch;               ///< extra tasks beyond threads; server default when absent
  std::vector<std::string> task_types;       ///< empty = any type
  std::string name;
};
struct RegisteredMsg {
  std::string worker_id;
  int heartbeat_interval_ms = 0;  ///< 0 = absent
};
/// DRAIN: worker -> server, "send me no more tasks" (the worker is stopping gracefully).
struct DrainMsg {};
struct PingMsg {};
struct PongMsg {};
struct StatsRequestMsg {};
/// STATS reply; kept as raw JSON since it is made for people and tools, not routing.
struct StatsReplyMsg {
  std::string json;
};
/// CANCEL: server -> worker, stop running a task attempt (timed out, client gone).
struct CancelMsg {
  std::string task_id;
  std::uint32_t attempt = 0;
};
/// GET_RESULT: client -> server; the RESULT if done (waiting up to wait_ms), else STATUS.
struct GetResultMsg {
  std::string task_id;
  std::int64_t wait_ms = 0;
};
/// ACCEPTED: server -> client, for TASKs sent with "reply":"ack".
struct AcceptedMsg {
  std::string task_id;
};
/// STATUS: server -> client, answer to GET_RESULT for a task that is not finished.
struct StatusMsg {
  std::string task_id;
  std::string state;  ///< queued | running | unknown
};

using Message = std::variant<TaskMsg, ResultMsg, ErrorMsg, WorkerRegisterMsg, RegisteredMsg, PingMsg,
                             PongMsg, StatsRequestMsg, StatsReplyMsg, CancelMsg, GetResultMsg,
                             AcceptedMsg, StatusMsg, DrainMsg>;

/// A decoded message and the fields every message may carry.
struct Envelope {
  Message message;
  std::optional<std::string> token;  ///< "token", for authentication
};

/// Why a frame could not be decoded; `task_id` is filled when it could be read.
struct DecodeError {
  ErrorCode code = ErrorCode::bad_json;
  std::string message;
  std::string task_id;
};

/// Limits applied while decoding.
struct DecodeLimits {
  std::size_t max_depth = 64;        ///< JSON nesting
  std::size_t max_task_id_bytes = 256;
};

/// Decodes one frame (one JSON object) into a message.
/// Never throws; malformed input yields a DecodeError with the protocol's code.
/// TASK and successful RESULT frames take a fast path (proto/fast_decode.hpp).
std::variant<Envelope, DecodeError> decode(std::string_view frame, const DecodeLimits& limits = {});
/// decode() without the fast path: the frame parsed into a DOM. The same answer for
/// every frame (the tests and the fuzzer check it); decode() calls it for all the rest.
std::variant<Envelope, DecodeError> decode_full(std::string_view frame, const DecodeLimits& limits = {});

/// Appends the compact JSON encoding of `m` and a '\n' to `out`.
void encode(std::string& out, const Message& m);
void encode(std::string& out, const TaskMsg& m);
void encode(std::string& out, const ResultMsg& m);
void encode(std::string& out, const ErrorMsg& m);

/// Returns the encoding of `m` (with its '\n').
std::string to_json_line(const Message& m);

/// Appends `s` as a JSON string literal (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

/// The wire name of a message's type, e.g. "TASK".
std::string_view type_name(const Message& m);

}  // namespace sd::proto
