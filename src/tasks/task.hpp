#pragma once
/// What a task type is: a pure function from task_data to a result or a typed error.

#include <boost/json/object.hpp>

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

#include "proto/error_code.hpp"

namespace sd::tasks {

/// The outcome of running one task.
/// On success `result_json` holds the serialized JSON value of the "result" field
/// (an object, e.g. {"hash":"..."}); it is raw JSON text because some results
/// (big Fibonacci numbers) cannot be represented by boost::json::value.
struct TaskOutcome {
  bool ok = false;
  std::string result_json;                              ///< set when ok
  proto::ErrorCode code = proto::ErrorCode::internal;   ///< set when !ok
  std::string message;                                  ///< set when !ok

  static TaskOutcome success(std::string result_json) {
    return TaskOutcome{true, std::move(result_json), proto::ErrorCode::internal, {}};
  }
  static TaskOutcome failure(proto::ErrorCode code, std::string message) {
    return TaskOutcome{false, {}, code, std::move(message)};
  }
};

/// Handed to a running task so that long tasks can stop cooperatively.
/// Thread-safety: read from the pool thread running the task; `stop` is requested
/// from any thread.
struct TaskContext {
  std::stop_token stop;  ///< requested on cancel or worker shutdown
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  /// True once the task should give up (stop requested or deadline passed).
  [[nodiscard]] bool cancelled() const {
    return stop.stop_requested() || std::chrono::steady_clock::now() >= deadline;
  }
};

/// A task type's implementation. Must not throw for bad input (return
/// invalid_task_data instead); an exception that escapes anyway becomes an
/// `internal` error result and the pool thread lives on.
using TaskFunction = std::function<TaskOutcome(const boost::json::object& data, const TaskContext& ctx)>;

}  // namespace sd::tasks
