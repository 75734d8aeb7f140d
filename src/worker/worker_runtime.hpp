#pragma once
/// A worker process's link to the server: connects (retrying with backoff), registers,
/// takes TASKs, runs them on an Executor, and sends each RESULT as soon as it is ready.
///
/// Threads: one I/O thread runs the io_context (socket, pings, cancels); the pool
/// threads only run tasks and hand results back through a locked batch that the I/O
/// thread drains with one post() per batch, so the I/O thread stays responsive however
/// busy the pool is (a busy worker never looks dead to the server's heartbeats).
/// One exception: a tiny task runs on the I/O thread itself, as soon as it is read. Tiny
/// means a type whose cost is linear in its input (TaskCost::linear_in_input: reverse,
/// hash) with at most kInlineMaxDataBytes of task_data, i.e. microseconds of work: less
/// than handing it to a pool thread and back (two thread wake-ups and two locks), and it
/// never waits behind long tasks that fill the pool. With 3 workers x 4 threads and
/// `reverse` tasks this halved the worker's CPU per task and raised the throughput by
/// about half (see README, "Performance"). Their results leave every kHereFlushEvery
/// tasks, and each send is tried at once on the non-blocking socket (asio's async_write
/// only for what does not fit).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"
#include "tasks/task_registry.hpp"
#include "worker/executor.hpp"

namespace sd::worker {

struct WorkerOptions {
  std::string host = "localhost";
  std::uint16_t port = 9000;
  int threads = 4;
  std::optional<int> prefetch;  ///< extra tasks held beyond `threads`; server default when unset
  std::string name;
  std::string token;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  /// The most one read takes from the socket; a read that fills it is followed by
  /// another in the same turn (up to 16), which may find the connection's end.
  std::size_t read_chunk_bytes = 64 * 1024;
};

/// Thread-safety: every public member must be called on the io_context's thread.
class WorkerRuntime {
 public:
  WorkerRuntime(boost::asio::io_context& io, WorkerOptions options, const tasks::TaskRegistry& registry);
  ~WorkerRuntime();

  /// Starts connecting; returns at once.
  void start();
  /// Graceful stop: tells the server to send no more tasks, finishes and reports what it
  /// holds, then closes and calls `done`.
  void drain(std::function<void()> done);
  /// Immediate stop: cancels running tasks, closes, calls `done` once the pool is idle.
  void stop_now(std::function<void()> done);

  /// Fatal problems (e.g. unauthorized) call this with a reason; the app exits non-zero.
  void on_fatal(std::function<void(const std::string&)> fn) { on_fatal_ = std::move(fn); }

  /// Tiny tasks run on the I/O thread between two sends of their results: the server
  /// works on the first results while the rest run (one send per read would leave it idle
  /// meanwhile; with one worker and 256 tasks in flight this took W1 from ~180k to ~250k
  /// tasks/s).
  static constexpr std::size_t kHereFlushEvery = 32;

 private:
  struct Running {
    std::uint32_t attempt = 0;
    std::stop_source stop;
  };

  void connect();
  void schedule_reconnect(const std::string& why);
  void on_connected();
  void read();
  void handle_frame(std::string_view frame);
  void start_task(proto::TaskMsg task);
  void collect_results();
  /// After handing a few tasks to an idle pool: waits here, at most kAwaitResults, for
  /// their results, instead of sleeping in epoll until a pool thread wakes it. Tiny
  /// tasks sent one at a time (a sequential client) then cost two context switches
  /// fewer on their way back; under load the pool is never idle and this never runs.
  void await_results_briefly();
  static constexpr std::chrono::microseconds kAwaitResults{50};
  /// Hands the tasks just read (batch_) to the pool and runs here_ on this thread.
  void run_started_tasks();
  /// Runs here_ on this thread, then sends what is done.
  void run_here();
  /// A task this small, of a type whose cost is linear in its input, takes a few
  /// microseconds: less than handing it to a pool thread and back (two wake-ups).
  static constexpr std::size_t kInlineMaxDataBytes = 4096;
  void send(const proto::Message& m);
  void flush();
  void disconnect(const std::string& why);
  void check_drained();

  boost::asio::io_context& io_;
  WorkerOptions options_;
  const tasks::TaskRegistry& registry_;
  std::unique_ptr<Executor> executor_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer retry_timer_;
  proto::FrameDecoder decoder_;
  std::string out_;
  std::string writing_;
  std::string worker_id_;
  std::vector<Executor::Job> batch_;  ///< tasks just read, for the pool
  /// Tasks just read that run on this thread: TaskCost::linear_in_input with task_data of
  /// at most kInlineMaxDataBytes.
  std::vector<Executor::Job> here_;
  std::unordered_map<std::string, Running> running_;  ///< task_id -> attempt out, stop switch
  /// Results finished while no connection was registered: sent after the next REGISTERED.
  std::vector<proto::ResultMsg> undelivered_;
  std::chrono::milliseconds backoff_;
  std::mt19937 rng_;
  std::uint64_t generation_ = 0;  ///< connection number: handlers of an old one do nothing
  bool connected_ = false;
  bool registered_ = false;
  bool draining_ = false;
  bool stopped_ = false;
  std::function<void()> on_drained_;
  std::function<void(const std::string&)> on_fatal_;

  // Results handed back by pool threads.
  struct Done {
    proto::ResultMsg result;
  };
  std::mutex done_mutex_;
  std::vector<Done> done_;
  std::atomic<bool> collect_posted_{false};
  std::atomic<std::size_t> done_count_{0};  ///< done_.size(), readable without the lock
  bool io_waiting_ = false;                 ///< (done_mutex_) in await_results_briefly
  std::atomic<bool> alive_{true};
};

}  // namespace sd::worker
