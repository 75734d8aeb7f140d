#pragma once
/// Durable storage of tasks and results, so that a server crash loses neither.
///
/// The server owns one TaskStore. During one turn of its event loop it records what it
/// accepted, dispatched, requeued, finished or dropped in a WriteBatch, then calls
/// write() once: one batch is one transaction (group commit), so the cost of a commit
/// is shared by everything that happened in that turn. After a restart,
/// load_unfinished() gives back the tasks to queue again.
///
/// Three implementations share these semantics exactly (one conformance test suite runs
/// against all of them): MemoryStore ("memory", nothing survives the process),
/// SqliteStore ("sqlite:PATH") and PostgresStore ("postgresql://...").
///
/// The interface is synchronous and knows nothing of Asio: a write blocks for a commit,
/// so a server calls it off its network threads or accepts that latency per turn.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sd::store {

/// Where a task is in its life. Stored as 0, 1, 2 (migrations.cpp).
enum class TaskState : std::uint8_t { queued = 0, running = 1, done = 2 };

/// "queued", "running" or "done".
std::string_view to_string(TaskState state) noexcept;

/// Everything needed to queue a task again after a restart.
struct StoredTask {
  std::string task_id;
  std::string task_type;
  std::string task_data_json;  ///< task_data as raw JSON text, stored and returned verbatim
  int priority = 0;
  std::optional<std::int64_t> timeout_ms;
  int max_retries = 3;
  std::uint32_t attempt = 0;  ///< the dispatch attempt currently out (fences stale results)
  bool async = false;         ///< submitted with reply:"ack": kept across graceful restarts
  std::int64_t created_at_ms = 0;

  friend bool operator==(const StoredTask&, const StoredTask&) = default;
};

/// The outcome of a task, as it was sent to the client.
struct StoredResult {
  std::string task_id;
  std::string result_message_json;  ///< the full RESULT message, stored and returned verbatim
  std::int64_t finished_at_ms = 0;

  friend bool operator==(const StoredResult&, const StoredResult&) = default;
};

/// A stored task with where it is. find_task() and load_unfinished() return these.
struct TaskRecord {
  StoredTask task;
  TaskState state = TaskState::queued;

  friend bool operator==(const TaskRecord&, const TaskRecord&) = default;
};

/// What the server did to its tasks during one event-loop turn, in the order it did it.
///
/// A store applies the operations exactly as if one by one in this order, inside one
/// transaction (so a task submitted, dispatched, lost with its worker and dispatched
/// again in one turn ends up running with the last attempt). The rules, per task_id:
///   - add_task: insert, or replace whatever is stored under that id (a finished task
///     resubmitted with different content, its old result gone); state queued.
///   - start: queued/running -> running, attempt stored. No effect on a done or unknown task.
///   - requeue: queued/running -> queued, attempt kept. No effect on a done or unknown task.
///   - finish: any state -> done with this result (a second finish replaces the result).
///     A result for a task the store does not hold is still kept, as a done task whose
///     other fields are those of a default StoredTask (task_id and created_at_ms =
///     finished_at_ms set): a result is never lost because its task was not stored.
///   - drop: delete the task and its result, whatever its state. No effect on an unknown task.
///
/// Every string must pass is_storable_text(): write() rejects a batch holding one that
/// does not with InvalidBatchError, on every store alike, before touching the data.
///
/// Thread safety: none; a batch is built and written by one thread.
class WriteBatch {
 public:
  struct AddTask {
    StoredTask task;
  };
  struct Start {
    std::string task_id;
    std::uint32_t attempt = 0;
  };
  struct Requeue {
    std::string task_id;
  };
  struct Finish {
    StoredResult result;
  };
  struct Drop {
    std::string task_id;
  };
  using Op = std::variant<AddTask, Start, Requeue, Finish, Drop>;

  void add_task(StoredTask task) { ops_.emplace_back(AddTask{std::move(task)}); }
  void start(std::string task_id, std::uint32_t attempt) {
    ops_.emplace_back(Start{std::move(task_id), attempt});
  }
  void requeue(std::string task_id) { ops_.emplace_back(Requeue{std::move(task_id)}); }
  void finish(StoredResult result) { ops_.emplace_back(Finish{std::move(result)}); }
  void drop(std::string task_id) { ops_.emplace_back(Drop{std::move(task_id)}); }

  /// Moves `other`'s operations to the end of this batch, in order.
  void append(WriteBatch&& other) {
    if (ops_.empty()) {
      ops_ = std::move(other.ops_);
    } else {
      ops_.insert(ops_.end(), std::make_move_iterator(other.ops_.begin()), std::make_move_iterator(other.ops_.end()));
    }
    other.ops_.clear();
  }
  void reserve(std::size_t n) { ops_.reserve(n); }
  bool empty() const noexcept { return ops_.empty(); }
  std::size_t size() const noexcept { return ops_.size(); }
  void clear() noexcept { ops_.clear(); }
  const std::vector<Op>& ops() const noexcept { return ops_; }

 private:
  std::vector<Op> ops_;
};

/// How many stored tasks are in each state.
struct StoreCounts {
  std::int64_t queued = 0, running = 0, done = 0;
  friend bool operator==(const StoreCounts&, const StoreCounts&) = default;
};

/// A failure of the store: cannot open, cannot write, cannot read. The message is one
/// line that names the store and the cause, fit for a log or a startup error.
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// write() was handed a string no store can hold (see is_storable_text). Nothing of the
/// batch was applied, and retrying the same batch cannot succeed.
struct InvalidBatchError : StoreError {
  using StoreError::StoreError;
};

/// Whether a store can hold `text`: valid UTF-8 (no overlong forms, no surrogates) and no
/// NUL byte, which is what PostgreSQL's text type accepts. A server checks task ids,
/// types and data with this before accepting a task (answering invalid_task otherwise),
/// so that one bad task never makes a whole batch fail.
bool is_storable_text(std::string_view text) noexcept;

/// Durable (or, for MemoryStore, process-lifetime) storage of tasks and results.
///
/// Every method throws StoreError on failure. A failed call changes nothing (a failed
/// write() rolls back whole) and leaves the store usable: once the cause goes away (disk
/// space freed, database back up) the next call works; PostgresStore reconnects by itself.
///
/// Thread safety: a store is used from one thread at a time; calls from several threads
/// need outside synchronisation. Distinct stores may be used from distinct threads.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  /// Applies the whole batch in one transaction (see WriteBatch for the rules). An empty
  /// batch does nothing and costs nothing. Returns once the transaction is committed.
  virtual void write(const WriteBatch& batch) = 0;

  /// The queued and running tasks, to queue again after a restart: highest priority
  /// first, then oldest created_at_ms, then the order they were added in.
  virtual std::vector<TaskRecord> load_unfinished() = 0;

  /// The result of a done task; nullopt when the task is unknown or not done.
  virtual std::optional<StoredResult> find_result(std::string_view task_id) = 0;

  /// The task in any state; nullopt when unknown (never added, dropped or purged).
  virtual std::optional<TaskRecord> find_task(std::string_view task_id) = 0;

  /// Deletes at most `limit` done tasks (with their results) that finished strictly
  /// before `finished_before_ms`, oldest first, and returns how many it deleted; each
  /// call is one bounded transaction. limit <= 0 deletes nothing. Call again until it
  /// returns less than `limit` to purge everything, except in SqliteStore, which looks
  /// at a window of 8 x limit rows per call (oldest first within it), going round the
  /// table from call to call: keep calling now and then (the server does every second).
  virtual std::int64_t purge_results_before(std::int64_t finished_before_ms,
                                            std::int64_t limit) = 0;

  /// Calls `f(task_id, finished_at_ms)` for every done task, oldest finish first (ties in
  /// the order they were stored). For a server's in-memory index of finished ids at start.
  virtual void for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) = 0;

  /// Number of stored tasks per state. Costs a scan of an index: for startup and
  /// diagnostics, not for every STATS request.
  virtual StoreCounts counts() = 0;

  /// Where the data lives, without secrets: "memory", "sqlite:/abs/sd.db (WAL,
  /// synchronous=NORMAL)", "postgresql://user@host:5432/db".
  virtual std::string describe() const = 0;
};

/// Opens the store a URI names, creating or migrating its schema:
///   "memory"                                     MemoryStore
///   "sqlite:PATH"  (PATH may be "file:..." URI)  SqliteStore, file created if missing
///   "postgresql://user:pass@host:port/db?..."    PostgresStore (also "postgres://")
/// Throws StoreError with a one-line message on an unknown scheme or when the store
/// cannot be opened (read-only file, folder without permission, server down, ...).
std::unique_ptr<TaskStore> open_store(std::string_view uri);

}  // namespace sd::store
