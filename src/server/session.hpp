#pragma once
/// One TCP connection to the server: reads frames, writes replies.
///
/// Reading is reactor-style: the session waits for readability, then reads everything
/// available into the server's shared read buffer and feeds its decoder, so an idle
/// connection holds no buffer at all. Output is appended to `out_` during an
/// event-loop turn and written with one async_write per turn (Server::flush_dirty()).
///
///   state:  open --(error, close(), fatal frame)--> closing --(output sent)--> closed

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "proto/frame_decoder.hpp"
#include "server/task_entry.hpp"

namespace sd::server {

class Server;

/// Thread-safety: none; every member runs on the server's event-loop thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class Role : std::uint8_t { unknown, client, worker };

  Session(Server& server, boost::asio::ip::tcp::socket socket, ConnId id, std::size_t max_message_bytes,
          bool loopback_peer);

  void start();
  /// Appends bytes to the output; they leave at the end of this event-loop turn.
  void append(std::string_view bytes);
  std::string& output() { return out_; }
  /// Marks the session as having output to write this turn.
  void mark_dirty();
  /// The output holds something that may leave only once the store has committed it
  /// (an ACCEPTED, a RESULT, a TASK accepted in this round): the whole output waits
  /// for the commit. Output without it leaves at the end of its turn.
  void mark_needs_commit() noexcept { needs_commit_ = true; }
  [[nodiscard]] bool needs_commit() const noexcept { return needs_commit_; }
  /// The store committed everything this session's output depends on.
  void committed() noexcept { needs_commit_ = false; }
  /// Writes what is queued (called once per turn by the server).
  void flush();
  /// Sends what is queued, then closes. `now`: close without flushing.
  void close(bool now = false);

  [[nodiscard]] ConnId id() const noexcept { return id_; }
  [[nodiscard]] Role role() const noexcept { return role_; }
  void set_role(Role r) noexcept { role_ = r; }
  [[nodiscard]] bool authenticated() const noexcept { return authenticated_; }
  void set_authenticated() noexcept { authenticated_ = true; }
  [[nodiscard]] bool loopback_peer() const noexcept { return loopback_peer_; }
  [[nodiscard]] bool is_open() const noexcept { return state_ == State::open; }
  [[nodiscard]] std::size_t pending_output() const noexcept { return out_.size() + writing_.size(); }
  [[nodiscard]] const std::string& peer() const noexcept { return peer_; }

 private:
  enum class State : std::uint8_t { open, closing, closed };

  void wait_readable();
  void on_readable();
  void on_written(const boost::system::error_code& ec);
  void finish_close();
  bool over_high_water() const;

  Server& server_;
  boost::asio::ip::tcp::socket socket_;
  ConnId id_;
  proto::FrameDecoder decoder_;
  std::string out_;      ///< appended this turn
  std::string writing_;  ///< being written
  std::string peer_;
  State state_ = State::open;
  Role role_ = Role::unknown;
  bool loopback_peer_;
  bool authenticated_ = false;
  bool dirty_ = false;
  bool needs_commit_ = false;
  bool reading_paused_ = false;  ///< backpressure: too much output not yet taken
  bool read_pending_ = false;
};

}  // namespace sd::server
