#pragma once
/// The client API: submit tasks to the server and wait for their results.
///
///     sd::client::Client c({.host = "localhost", .port = 9000});
///     auto r = c.run("hash", R"({"text":"Hola Mundo"})");
///     if (r.ok) std::cout << r.result << "\n";   // {"hash":"c3a4..."}
///
/// Many tasks may be in flight on one Client: submit() several, then wait_result() each;
/// results that arrive for other tasks meanwhile are kept until asked for.
/// Thread-safety: none; use one Client per thread.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "client/connection.hpp"
#include "proto/messages.hpp"

namespace sd::client {

/// Makes task ids unique across processes: 12 random hex digits, '-', a counter.
/// Thread-safety: none.
class TaskIdGenerator {
 public:
  TaskIdGenerator();
  /// "3f9a1c0e7b2d-1", "3f9a1c0e7b2d-2", ...
  std::string next();
  /// The random part, shared by every id this generator makes.
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }

 private:
  std::string prefix_;
  std::uint64_t counter_ = 0;
};

class Client {
 public:
  /// Connects now; throws ClientError (see Connection).
  explicit Client(const ConnectOptions& options);

  /// Sends a TASK and returns its id (made unique here when `task.task_id` is empty).
  /// Does not wait. Throws ClientError when the connection fails.
  std::string submit(proto::TaskMsg task);

  /// Sends a TASK with "reply":"ack" and waits for the server's ACCEPTED; the RESULT
  /// can then be fetched later with get_result(). Throws ClientError rejected when the
  /// server answers with an ERROR, timeout when it does not answer in `timeout`.
  std::string submit_async(proto::TaskMsg task, std::chrono::milliseconds timeout);

  /// Waits for the RESULT of `task_id`. An ERROR that names the task (or names none:
  /// the server could not read what we sent) becomes an error ResultMsg. Throws
  /// ClientError timeout when nothing comes within `timeout`, lost/protocol on failure.
  proto::ResultMsg wait_result(const std::string& task_id, std::chrono::milliseconds timeout);

  /// submit() then wait_result(): one task, start to end. `task_data_json` is the
  /// raw JSON text of an object.
  proto::ResultMsg run(std::string_view task_type, std::string_view task_data_json,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// Asks the server for a finished task's RESULT, waiting up to `wait_ms` on the
  /// server; a StatusMsg (queued, running, unknown) when it is not finished.
  std::variant<proto::ResultMsg, proto::StatusMsg> get_result(const std::string& task_id,
                                                              std::int64_t wait_ms);

  /// The server's STATS reply, as raw JSON text.
  std::string stats(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// A PING/PONG round trip; returns how long it took.
  std::chrono::microseconds ping(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// The JSON text of the RESULT (or ERROR) behind the last wait_result()/get_result()
  /// answer, exactly as it arrived; for `--json` output.
  [[nodiscard]] const std::string& last_raw() const noexcept { return last_raw_; }

  Connection& connection() noexcept { return conn_; }
  TaskIdGenerator& ids() noexcept { return ids_; }

 private:
  /// Keeps a message that is not the one being waited for; true if it was kept.
  bool stash(const proto::Envelope& env);
  /// Receives the next message or throws ClientError timeout at `deadline`.
  proto::Envelope next_message(Clock::time_point deadline, std::string_view what);

  struct Stashed {
    proto::ResultMsg result;
    std::string raw;
  };

  Connection conn_;
  TaskIdGenerator ids_;
  std::unordered_map<std::string, Stashed> early_;
  std::string last_raw_;
};

/// An ERROR reply seen as the failed result of `task_id`.
proto::ResultMsg error_result(const std::string& task_id, const proto::ErrorMsg& error);

}  // namespace sd::client
