#pragma once
/// The server's scheduling core: accepted tasks, the queue, the workers, and who gets
/// which result. A pure state machine: no sockets, no clock (time is passed in), no
/// logging; its effects go out through a DispatchSink, so tests drive it directly.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/messages.hpp"
#include "server/task_entry.hpp"
#include "server/task_table.hpp"
#include "server/task_queue.hpp"
#include "store/task_store.hpp"

namespace sd::server {

/// Where the dispatcher's decisions go (the server's sessions, or a test's recorder).
class DispatchSink {
 public:
  virtual ~DispatchSink() = default;
  /// `seq`: the task's TaskEntry::seq (its acceptance order), so that the sink need not
  /// look the task up by id.
  virtual void send_task(ConnId worker, const proto::TaskMsg& task, std::uint64_t seq) = 0;
  virtual void send_cancel(ConnId worker, const proto::CancelMsg& cancel) = 0;
  /// `line`: `result` encoded, without '\n' (encoded once, for the record and the client).
  virtual void send_result(ConnId client, const proto::ResultMsg& result, std::string_view line) = 0;
  virtual void send_error(ConnId conn, const proto::ErrorMsg& error) = 0;
  virtual void send_accepted(ConnId client, std::string_view task_id) = 0;
  /// A task's outcome was recorded (its RESULT line, without '\n', as stored): for
  /// GET_RESULT waiters and the server's cache of recent results.
  virtual void result_recorded(const proto::TaskMsg& /*task*/, const std::string& /*line*/) {}
};

struct DispatcherOptions {
  std::size_t max_queued = 1'000'000;        ///< then new tasks get queue_full
  int default_max_retries = 3;               ///< re-runs after lost workers
  /// Extra slots per worker that declares no prefetch; -1: adaptive (see WorkerInfo::window).
  int default_prefetch = -1;
  std::chrono::milliseconds queue_timeout{60'000};  ///< for types no connected worker runs
  std::string id_prefix = "t";               ///< server-made task ids: <prefix>-<n>
  /// Record what happens as store operations (take_batch()); off for a server that keeps
  /// nothing (the memory store), which saves a copy of every task and result.
  bool record_store_ops = true;
  /// How long a dispatch's "running" record waits for the task's result before it is
  /// recorded on its own (tick()). A result (or a requeue) within that time records it
  /// just before itself, where the store merges the two into one write. 0: at once.
  std::chrono::milliseconds running_record_delay{0};
};

/// A worker as the dispatcher sees it.
struct WorkerInfo {
  ConnId conn = 0;
  std::string id;  ///< worker_1, worker_2, ...
  std::string name;
  int threads = 0;
  int capacity = 0;  ///< threads + prefetch: never more tasks out to it
  /// How many tasks it may hold now (<= capacity). Fixed at capacity when a prefetch
  /// was declared. Otherwise adaptive: capacity is 33 x threads, the window starts at
  /// 3 x threads and follows the worker's task durations (RESULT processing_time):
  /// enough queued per thread to cover about a millisecond of network round trip, so
  /// tiny tasks stream (up to 32 queued per thread) and long ones are not hoarded by one
  /// worker (1 queued per thread) while another could run them.
  int window = 0;
  bool adaptive = false;
  double avg_task_seconds = -1;  ///< moving average of processing_time; < 0: none yet
  std::vector<std::string> task_types;  ///< empty: any type
  std::vector<TaskEntry*> in_flight;
  /// Of in_flight, the tasks of types not known to be tiny. Adaptive workers hold no more
  /// of them than their type's duration calls for (Dispatcher::untiny_limit), whatever
  /// tiny tasks did to the window: a burst of long tasks waits in the server, where any
  /// worker that frees a slot can take it, instead of queueing behind a few threads.
  int untiny_in_flight = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  bool draining = false;  ///< sent DRAIN: finishes what it holds, gets nothing new
  TimePoint last_seen{};
  TimePoint registered_at{};
};

struct DispatcherCounters {
  std::uint64_t accepted = 0;
  std::uint64_t completed = 0;  ///< success results delivered
  std::uint64_t failed = 0;     ///< error results delivered (task errors, timeouts, worker_lost, ...)
  std::uint64_t rejected = 0;   ///< TASKs refused with an ERROR (duplicate, queue_full, ...)
  std::uint64_t requeued = 0;   ///< runs handed back to the queue after a worker was lost
  std::uint64_t stale_results = 0;  ///< results dropped: not the attempt currently out
  std::uint64_t attached = 0;       ///< TASKs re-sent by a reconnected client, attached to the pending task
  std::uint64_t recovered = 0;      ///< tasks loaded from the store at start
};

/// Thread-safety: none; lives on the server's event-loop thread.
class Dispatcher {
 public:
  Dispatcher(DispatcherOptions options, DispatchSink& sink);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // --- clients -------------------------------------------------------------------------
  /// Accepts a TASK from `client` (or refuses it with an ERROR through the sink).
  /// Returns the task id when accepted.
  std::optional<std::string> submit(ConnId client, proto::TaskMsg task, TimePoint now);
  /// The client went away: its queued tasks are dropped, its running ones cancelled.
  void client_gone(ConnId client);

  // --- workers -------------------------------------------------------------------------
  /// Registers a worker; returns its id (worker_N).
  const WorkerInfo& add_worker(ConnId conn, const proto::WorkerRegisterMsg& reg, TimePoint now);
  /// The worker went away (disconnect, crash, heartbeat timeout): its tasks run again
  /// elsewhere, or fail with worker_lost after max_retries re-runs.
  void worker_gone(ConnId conn);
  /// Any message from the worker proves it alive.
  void worker_seen(ConnId conn, TimePoint now);
  /// The worker sent DRAIN: it keeps its tasks but is given no new ones.
  /// Returns the worker (nullptr if `conn` is not one).
  const WorkerInfo* worker_draining(ConnId conn);
  /// A RESULT from a worker; forwarded to the client if it is for the attempt out.
  void on_result(ConnId worker_conn, proto::ResultMsg result);
  [[nodiscard]] bool is_worker(ConnId conn) const { return workers_.contains(conn); }

  // --- the store ---------------------------------------------------------------------
  /// What happened since the last take_batch(), as store operations in order.
  [[nodiscard]] store::WriteBatch take_batch() {
    store::WriteBatch taken = std::exchange(batch_, {});
    // The next round is likely as big; room for twice that, so that a bigger one does
    // not move every operation recorded so far (a reallocation moves them all).
    batch_.reserve(std::max<std::size_t>(64, 2 * taken.size()));
    return taken;
  }
  [[nodiscard]] const store::WriteBatch& batch() const noexcept { return batch_; }
  /// Wall-clock time (ms since the epoch) for the timestamps of stored records.
  void set_wall_clock_ms(std::int64_t ms) noexcept { wall_ms_ = ms; }
  /// Queues a task loaded from the store after a restart (no client waits for it).
  /// A task that was running is requeued (at-least-once): its stored attempt stays the
  /// current one until it is dispatched again, so a worker's late result for it counts.
  void restore(const store::TaskRecord& record, TimePoint now);
  /// Tasks per state in the store, as this dispatcher's recorded operations leave them
  /// (seeded by set_store_counts at start).
  [[nodiscard]] const store::StoreCounts& store_counts() const noexcept { return store_counts_; }
  void set_store_counts(store::StoreCounts c) noexcept { store_counts_ = c; }
  void purged(std::int64_t n) noexcept { store_counts_.done -= n; }
  /// "queued" or "running" for a pending task that has not been answered; nullopt otherwise.
  [[nodiscard]] std::optional<std::string_view> pending_state(std::string_view task_id) const;
  /// The pending (unanswered) task with this id, if any.
  [[nodiscard]] const TaskEntry* find_pending(std::string_view task_id) const;
  /// A finished task with the same id is being replaced by a new submission (its stored
  /// result goes): keeps the store counts right.
  void replacing_done() noexcept { --store_counts_.done; }

  // --- time and scheduling -------------------------------------------------------------
  /// Hands queued tasks to workers with free slots: tiny-task workers are filled first,
  /// the others get one task each per step, round-robin.
  void dispatch(TimePoint now);
  /// Timeouts: tasks past their timeout_ms, tasks no worker can run past queue_timeout;
  /// running records whose delay is over.
  void tick(TimePoint now);
  /// Records every running record still waiting (before a last write at shutdown).
  void record_waiting_starts();
  /// Running tasks whose running record waits (see running_record_delay).
  [[nodiscard]] std::size_t waiting_starts() const noexcept { return waiting_starts_; }
  /// Workers silent for longer than `timeout`.
  [[nodiscard]] std::vector<ConnId> silent_workers(TimePoint now, std::chrono::milliseconds timeout) const;

  // --- shutdown ------------------------------------------------------------------------
  /// Answers every queued task with server_shutdown (and refuses new ones from now on).
  /// Queued asynchronous ("reply":"ack") tasks are not answered: they stay queued in the
  /// store for the next start. Returns how many were kept that way.
  std::size_t stop_accepting();
  /// Answers every task still running with server_shutdown.
  void fail_running();
  [[nodiscard]] std::size_t running_count() const noexcept { return running_; }

  // --- introspection -------------------------------------------------------------------
  [[nodiscard]] std::size_t queued_count() const noexcept { return queue_.size(); }
  [[nodiscard]] std::size_t pending_count() const noexcept { return tasks_.size(); }
  /// The acceptance sequence number the next accepted (or restored) task will get.
  [[nodiscard]] std::uint64_t next_seq() const noexcept { return next_seq_; }
  [[nodiscard]] const DispatcherCounters& counters() const noexcept { return counters_; }
  /// Workers in registration order.
  [[nodiscard]] std::vector<const WorkerInfo*> workers() const;

 private:
  struct ClientInfo {
    std::size_t queued = 0;  ///< tasks of this client in the queue: skip the scan when 0
    bool has_async = false;  ///< sent reply=ack tasks: detach them when it leaves
  };
  struct StringHash {
    using is_transparent = void;
    // Not noexcept: libstdc++ then keeps each node's hash, so that a lookup compares hashes
    // before keys and never rehashes a neighbour's key to find where a bucket ends.
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Deadline {
    TimePoint at;
    std::string task_id;
    std::uint64_t seq;
    bool operator>(const Deadline& o) const { return at > o.at; }
  };

  void refuse(ConnId client, proto::ErrorCode code, std::string message, const std::string& task_id);
  /// Sends the task's one RESULT (if anyone waits) and forgets the task unless it is still out.
  void finish(TaskEntry& task, proto::ResultMsg result);
  void fail(TaskEntry& task, proto::ErrorCode code, std::string message);
  void erase(TaskEntry& task);
  void enqueue(TaskEntry& task, bool front);
  /// Takes the tasks matching `pred` out of the queue, in acceptance order.
  std::vector<TaskEntry*> unqueue_if(const std::function<bool(const TaskEntry&)>& pred);
  /// `tiny`: the task's type is known to be tiny.
  void assign(WorkerInfo& worker, TaskEntry& task, TimePoint now, bool tiny);
  /// Sends the running `task`'s worker a CANCEL for the attempt out, unless one went.
  void cancel_once(TaskEntry& task);
  void detach_from_worker(TaskEntry& task);
  /// An adaptive worker reported a task that took `task_seconds`: its window follows.
  void adapt_window(WorkerInfo& w, double task_seconds);
  /// The window of adaptive worker `w` for tasks that take `seconds`: its threads, and
  /// enough queued per thread to cover about a millisecond of round trip (at least one,
  /// at most kMaxQueuedPerThread).
  static int window_for(const WorkerInfo& w, double seconds);
  /// How many tasks of types not known to be tiny `w` may hold when the next one is of
  /// `type`: the window its learnt duration calls for, 3 x threads (where every adaptive
  /// window starts) for a type not learnt yet; a declared prefetch: its capacity.
  [[nodiscard]] int untiny_limit(const WorkerInfo& w, std::string_view type) const;
  /// `w` may take a task of `type` now, as far as untiny_limit goes (the window aside).
  [[nodiscard]] bool has_slot_for(const WorkerInfo& w, std::string_view type) const;
  /// Adaptive, and its window grew past 3 x threads: its tasks take well under a ms.
  static bool runs_tiny_tasks(const WorkerInfo& w);
  /// A result of `type` took `seconds`: the type's moving average follows.
  void learn_duration(std::string_view type, double seconds);
  /// Results of `type` have shown it tiny (what opens a window past 3 x threads).
  [[nodiscard]] bool is_tiny_type(std::string_view type) const;
  /// dispatch(), first part: tiny-task workers, in registration order, up to their window.
  void fill_tiny_task_workers(TimePoint now);
  /// dispatch(), second part: one task per worker and step, round-robin.
  void round_robin(TimePoint now);

  static constexpr int kMaxQueuedPerThread = 32;     ///< adaptive capacity: 33 x threads
  static constexpr int kStartWindowPerThread = 3;    ///< an adaptive window starts at 3 x threads
  static constexpr double kRoundTripCover = 0.001;   ///< seconds of work queued per thread
  static constexpr double kTinyTaskSeconds = kRoundTripCover / 2;
  static constexpr std::size_t kMaxLearntTypes = 1024;  ///< types are client text: bounded
  bool can_run(const WorkerInfo& w, std::string_view type) const;
  bool any_worker_runs(std::string_view type) const;
  void expire_unrunnable(TimePoint now);
  ClientInfo* client_info(ConnId client);
  void set_stored(TaskEntry& task, TaskEntry::Stored to);
  /// Records `task`'s outcome `sent` and sends it to the task's client, if any: encoded
  /// once (into line_) for the record, the recent-results cache and the client.
  void record_finish(TaskEntry& task, const proto::ResultMsg& sent);
  void record_drop(TaskEntry& task);
  /// Records `task`'s running record if it waits: before any later operation on it.
  void record_start(TaskEntry& task);
  /// The running records whose delay is over at `now` (or all of them).
  void record_due_starts(TimePoint now, bool all);

  DispatcherOptions options_;
  DispatchSink& sink_;
  TaskTable tasks_;
  TaskQueue queue_;
  std::unordered_map<ConnId, WorkerInfo> workers_;
  /// Moving average of processing_time per task type, from every worker's results: only
  /// types known to be tiny are packed (an unknown or long type is spread round-robin,
  /// even onto workers whose window tiny tasks opened).
  std::unordered_map<std::string, double, StringHash, std::equal_to<>> type_seconds_;
  std::vector<ConnId> ring_;  ///< workers in registration order, for round-robin
  std::size_t ring_pos_ = 0;
  std::unordered_map<ConnId, ClientInfo> clients_;
  std::vector<Deadline> deadlines_;  ///< min-heap on `at`
  DispatcherCounters counters_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_worker_ = 1;
  std::size_t running_ = 0;
  bool accepting_ = true;
  TimePoint last_unrunnable_check_{};
  store::WriteBatch batch_;
  std::string line_;  ///< record_finish's RESULT line (kept for its capacity)
  struct WaitingStart {
    std::string task_id;
    std::uint32_t attempt;
    TimePoint due;
  };
  std::deque<WaitingStart> start_queue_;  ///< in dispatch order (so in `due` order)
  std::size_t waiting_starts_ = 0;        ///< tasks with start_unrecorded
  store::StoreCounts store_counts_;
  std::int64_t wall_ms_ = 0;
};

}  // namespace sd::server
