#pragma once
/// The job server: accepts connections on one port, gives each a Session, feeds their
/// messages to the Dispatcher, and carries the dispatcher's decisions back to sockets.
/// One event loop (one thread) does all of it; batching comes from handling every
/// message a read returned before writing, and writing once per turn per connection.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"
#include "server/dispatcher.hpp"
#include "server/server_options.hpp"
#include "server/session.hpp"

namespace sd::server {

/// Thread-safety: all members run on the io_context's single thread; construct it and
/// call start() there (or before running the io_context).
class Server final : private DispatchSink {
 public:
  Server(boost::asio::io_context& io, ServerOptions options);
  ~Server() override;

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
  void send_task(ConnId worker, const proto::TaskMsg& task) override;
  void send_cancel(ConnId worker, const proto::CancelMsg& cancel) override;
  void send_result(ConnId client, const proto::ResultMsg& result) override;
  void send_error(ConnId conn, const proto::ErrorMsg& error) override;
  void send_accepted(ConnId client, std::string_view task_id) override;

  Session* session(ConnId id);
  void do_accept();
  void on_tick();
  void on_heartbeat();
  void flush_dirty();
  bool admit(Session& s, const proto::Envelope& env);
  void handle(Session& s, proto::Envelope env);
  void reply_error(Session& s, proto::ErrorCode code, std::string message, std::string task_id = {});
  void check_shutdown_progress();
  void wait_sessions_closed(TimePoint deadline, std::function<void()> done);

  boost::asio::io_context& io_;
  ServerOptions options_;
  Dispatcher dispatcher_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer shutdown_timer_;
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
