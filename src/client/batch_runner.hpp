#pragma once
/// Sends many tasks pipelined on one connection and measures them.
///
///   writer: up to `window` tasks in flight; tasks are encoded into one buffer and
///           written with a single async_write (thousands of messages per write)
///   reader: always has an async_read_some pending, so results are drained while the
///           writer is still writing: neither side can fill its buffers and wait on
///           the other (no deadlock), all on one thread.
///
///   task ids: "<12 hex>-<index>" so a result is matched to its task by parsing, and a
///   second RESULT for the same task is detected (and counted as a duplicate).
///
/// Thread-safety: none; run() drives the Connection's io_context on the calling thread.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>

#include "client/connection.hpp"
#include "client/latency_stats.hpp"
#include "proto/messages.hpp"

namespace sd::client {

struct BatchOptions {
  std::size_t count = 0;       ///< tasks to send
  std::size_t window = 1000;   ///< most tasks in flight at once; 0 = all of them
  /// Give up when no result arrives for this long; the tasks still out count as lost.
  std::chrono::milliseconds idle_timeout{30000};
  /// Least time between two progress callbacks (the last one is always made).
  std::chrono::milliseconds progress_interval{50};
};

/// Where a run stands, for a progress bar.
struct BatchProgress {
  std::size_t total = 0;
  std::size_t sent = 0;
  std::size_t completed = 0;  ///< succeeded
  std::size_t failed = 0;
  double elapsed_s = 0;

  [[nodiscard]] std::size_t done() const noexcept { return completed + failed; }
};

struct BatchReport {
  std::size_t total = 0;
  std::size_t sent = 0;
  std::size_t completed = 0;    ///< results with status success
  std::size_t failed = 0;       ///< results with status error (or an ERROR naming the task)
  std::map<std::string, std::size_t> errors;  ///< failed, by error code
  std::string first_error;      ///< "code: message" of the first failure, for people
  std::size_t lost = 0;         ///< sent, never answered (only after an idle timeout)
  std::size_t duplicates = 0;   ///< a second answer for a task (a protocol violation)
  std::size_t unexpected = 0;   ///< answers naming no task of ours, or ERRORs without id
  bool timed_out = false;
  double elapsed_s = 0;         ///< first write to last answer
  double throughput = 0;        ///< answered tasks per second
  LatencySummary latency_ms;    ///< per task: from its write to its answer

  /// Every task answered exactly once, successfully.
  [[nodiscard]] bool all_ok() const noexcept {
    return completed == total && failed == 0 && lost == 0 && duplicates == 0;
  }
};

/// Makes task `index` (0-based); its task_id is replaced by the runner's own.
using TaskFactory = std::function<proto::TaskMsg(std::size_t index)>;
using ProgressCallback = std::function<void(const BatchProgress&)>;

class BatchRunner {
 public:
  BatchRunner(Connection& connection, BatchOptions options);

  /// Runs the batch to the end (or to the idle timeout) and reports.
  /// Throws ClientError lost/protocol when the connection fails.
  BatchReport run(const TaskFactory& make_task, const ProgressCallback& progress = {});

 private:
  Connection& conn_;
  BatchOptions options_;
};

}  // namespace sd::client
