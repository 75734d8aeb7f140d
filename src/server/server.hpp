#pragma once
/// The job server: accepts connections on one port, gives each a Session, feeds their
/// messages to the Dispatcher, and carries the dispatcher's decisions back to sockets.
/// One event loop (one thread) does all of it; batching comes from handling every
/// message a read returned before writing, and writing once per turn per connection.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <deque>
#include <optional>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"
#include "server/dispatcher.hpp"
#include "server/done_id_filter.hpp"
#include "server/recent_results.hpp"
#include "server/server_options.hpp"
#include "server/session.hpp"
#include "server/store_writer.hpp"
#include "store/task_store.hpp"

namespace sd::server {

/// Thread-safety: all members run on the io_context's single thread; construct it and
/// call start() there (or before running the io_context).
class Server final : private DispatchSink {
 public:
  /// `store`: where tasks and results are kept; nullptr: an in-memory store.
  Server(boost::asio::io_context& io, ServerOptions options, std::unique_ptr<store::TaskStore> store = nullptr);
  ~Server() override;

  /// Loads the store's unfinished tasks and queues them again (call once, before
  /// start()). Returns how many. Throws store::StoreError when the store cannot be read.
  std::size_t recover();
  /// The store's description ("sqlite:/abs/sd.db (WAL, ...)").
  [[nodiscard]] std::string store_description() const { return store_->describe(); }

  /// Binds and listens; throws std::system_error when it cannot.
  void start();
  /// The port actually bound (useful with port 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// Graceful stop: stop accepting, answer queued tasks with server_shutdown, let running
  /// ones finish within the grace period, then close everything. `done` runs at the end.
  void shutdown(std::function<void()> done);

  [[nodiscard]] const ServerOptions& options() const noexcept { return options_; }
  [[nodiscard]] const Dispatcher& dispatcher() const noexcept { return dispatcher_; }
  /// The STATS reply.
  [[nodiscard]] std::string stats_json() const;

  // --- called by sessions --------------------------------------------------------------
  void begin_turn();
  void end_turn();
  std::span<char> read_buffer() noexcept { return {read_buffer_.data(), read_buffer_.size()}; }
  void on_frame(Session& s, std::string_view frame);
  void on_frame_error(Session& s, const proto::Frame& f);
  void on_closed(Session& s);
  void schedule_flush(std::shared_ptr<Session> s);
  void forget(ConnId id);

 private:
  // DispatchSink
  void send_task(ConnId worker, const proto::TaskMsg& task, std::uint64_t seq) override;
  void send_cancel(ConnId worker, const proto::CancelMsg& cancel) override;
  void send_result(ConnId client, const proto::ResultMsg& result, std::string_view line) override;
  void send_error(ConnId conn, const proto::ErrorMsg& error) override;
  void send_accepted(ConnId client, std::string_view task_id) override;
  void result_recorded(const proto::TaskMsg& task, const std::string& line) override;

  struct Waiter {
    ConnId conn = 0;
    TimePoint deadline{};
  };
  struct DoneTask {
    std::string task_type;
    std::string task_data;
    std::string line;
  };

  /// What a store job reports back to the event loop.
  struct StoreOutcome {
    bool ok = false;
    bool invalid = false;  ///< the batch can never be stored (InvalidBatchError)
    bool skipped = false;  ///< not tried: a write before it failed
    std::string error;
    double seconds = 0;
    std::int64_t purged = 0;
  };
  /// Starts the commit of everything recorded since the last one (and what an earlier
  /// failed write left): one transaction, on the store's thread, queued behind the
  /// (at most one) under way, so that the writer never waits for the loop. The output
  /// held for it leaves when it is done (commit_done); commits complete in order.
  void start_commit();
  /// The operations not stored yet: what a failed write left, then this round's.
  store::WriteBatch take_unstored();
  /// Writes `batch` in one transaction; never throws (the outcome says what happened).
  static StoreOutcome write_batch(store::TaskStore& st, const store::WriteBatch& batch);
  /// Nothing is to be committed for the output held for the next round: it leaves now.
  void release_held_open();
  void commit_done(store::WriteBatch batch, const StoreOutcome& outcome, std::uint64_t seq);
  /// Shutdown only, with no commit under way: stores what is left, synchronously.
  void persist_now();
  /// Records a write's outcome: health, failure counts, what to retry.
  void note_write(store::WriteBatch batch, const StoreOutcome& outcome);
  void on_purge();
  void schedule_purge(std::chrono::milliseconds after);
  void handle_get_result(Session& s, const proto::GetResultMsg& m);
  void send_status(Session& s, const std::string& task_id);
  /// The stored RESULT line of a finished task (recent cache, then the store).
  std::optional<std::string> find_result_line(const std::string& task_id);
  /// A finished task under this id with its content, for idempotent resubmission.
  std::optional<DoneTask> find_done(const std::string& task_id);
  /// The operations not yet known to be in the store, newest first: this round's, the
  /// commits under way (newest first), what a failed write left.
  std::vector<const store::WriteBatch*> unstored_newest_first() const;
  void expire_waiters();
  /// Handles a TASK: idempotency against finished tasks, then the dispatcher.
  void submit(Session& s, proto::TaskMsg m);

  Session* session(ConnId id);
  void do_accept();
  void on_tick();
  void on_heartbeat();
  /// Writes what the dirty sessions hold that may leave.
  void flush_dirty();
  /// Marks `s` as holding output that needs this round's commit.
  void needs_commit(Session& s);
  /// After every handler that was ready together has run its turn: one store write for
  /// all of them (group commit), if none is under way.
  void commit_turns();
  bool admit(Session& s, const proto::Envelope& env);
  void handle(Session& s, proto::Envelope env);
  void reply_error(Session& s, proto::ErrorCode code, std::string message, std::string task_id = {});
  void check_shutdown_progress();
  void wait_sessions_closed(TimePoint deadline, std::function<void()> done);

  boost::asio::io_context& io_;
  ServerOptions options_;
  /// A store that keeps tasks across restarts: every change is recorded and committed
  /// (on the writer's thread). Without one (memory), nothing is recorded; finished
  /// results live only in the recent-results cache.
  const bool durable_;
  Dispatcher dispatcher_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer shutdown_timer_;
  boost::asio::steady_timer purge_timer_;
  std::unique_ptr<store::TaskStore> store_;
  StoreWriter writer_;        ///< runs store_'s writes (and purges) off the loop
  /// Finished ids a durable store may hold (unused with the memory store).
  DoneIdFilter done_ids_;
  std::size_t commits_inflight_ = 0;  ///< at most Session::kMaxCommitsInFlight
  bool purge_inflight_ = false;
  std::vector<std::shared_ptr<Session>> held_open_;  ///< output waits for the next commit
  /// Per commit under way, oldest first: the sessions whose output waits for it.
  std::deque<std::vector<std::shared_ptr<Session>>> held_cut_;
  store::WriteBatch pending_;      ///< operations a failed write left, retried first
  /// Per commit under way, oldest first: its batch (owned by the job, which the writer
  /// thread only reads until commit_done), so that look-ups see what is being written.
  std::deque<const store::WriteBatch*> committing_;
  bool store_healthy_ = true;
  std::string store_last_error_;
  std::uint64_t store_failures_ = 0;
  TimePoint store_retry_at_{};
  std::unordered_map<std::string, std::vector<Waiter>> waiters_;
  std::size_t waiter_count_ = 0;
  RecentResults recent_;  ///< memory store: the latest results (a durable store has them all)
  std::int64_t purged_total_ = 0;
  bool commit_scheduled_ = false;
  std::uint64_t committed_seq_ = 1;  ///< tasks with a smaller acceptance seq are stored
  std::uint64_t store_writes_ = 0;
  double store_write_seconds_ = 0;
  std::uint64_t store_reads_ = 0;
  double store_read_seconds_ = 0;
  std::unordered_map<ConnId, std::shared_ptr<Session>> sessions_;
  std::vector<std::shared_ptr<Session>> dirty_;
  std::vector<char> read_buffer_;
  ConnId next_conn_ = 1;
  std::uint16_t port_ = 0;
  int turn_depth_ = 0;
  TimePoint now_{};
  TimePoint started_at_{};
  bool shutting_down_ = false;
  TimePoint shutdown_deadline_{};
  std::function<void()> on_shutdown_done_;
};

}  // namespace sd::server
