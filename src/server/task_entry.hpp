#pragma once
/// What the server knows about one accepted task while it is pending.

#include <chrono>
#include <cstdint>
#include <string>

#include "proto/messages.hpp"

namespace sd::server {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
/// Identifies a connection for the life of the server process (never reused).
using ConnId = std::uint64_t;

/// A pending task. Invariants:
///  - state == queued  <=> the task is in the TaskQueue, worker == 0;
///  - state == running <=> the task is in exactly one worker's in-flight list;
///  - answered: the client already got its one RESULT (timeout); the entry lives on
///    only until its worker reports or is lost, so that the slot stays counted.
struct TaskEntry {
  enum class State : std::uint8_t { queued, running };

  proto::TaskMsg msg;            ///< as submitted (task_id always set)
  ConnId client = 0;             ///< 0: nobody waits for the result any more
  ConnId worker = 0;             ///< when running
  std::uint64_t seq = 0;         ///< acceptance order
  TimePoint accepted_at{};
  TimePoint dispatched_at{};
  State state = State::queued;
  std::uint32_t attempt = 0;     ///< dispatch attempts so far; the one out is `attempt`
  std::uint16_t lost_runs = 0;   ///< re-runs caused by lost workers
  /// When running: its index in the worker's in-flight list (removal is O(1)).
  std::uint32_t in_flight_pos = 0;
  bool answered = false;
  /// The outcome is kept in the store even if nobody waits for it: asynchronous tasks
  /// and tasks recovered from the store after a restart.
  bool keep_result = false;
  /// Dispatched, and the store has not been told yet (DispatcherOptions::running_record_delay).
  bool start_unrecorded = false;
  /// When running: counted in its worker's untiny_in_flight (its type was not known to
  /// be tiny when it was sent).
  bool untiny_slot = false;
  /// Its worker was sent a CANCEL for the attempt out (the client left, or the timeout
  /// passed): one is enough.
  bool cancel_sent = false;
  /// Where the store holds the task (the state its last recorded operation left it in).
  enum class Stored : std::uint8_t { queued, running, done } stored = Stored::queued;
};

}  // namespace sd::server
