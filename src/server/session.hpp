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

#include <array>
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
  // Output that may leave only once the store has committed what it tells (an ACCEPTED,
  // a RESULT, a TASK accepted in this round) is held, with everything appended before
  // it that has not left yet; output behind held output waits too (order is kept).
  // Commits are cut in rounds: mark_needs_commit() holds the output for the round being
  // gathered; cut_for_commit() says that round's commit has started (its bytes end
  // here); committed() releases the bytes of the oldest commit under way. Up to
  // kMaxCommitsInFlight commits may be under way; they complete in the order they began.
  static constexpr std::size_t kMaxCommitsInFlight = 2;

  /// What was appended so far waits for the commit of the round being gathered.
  void mark_needs_commit() noexcept { open_hold_ = true; }
  [[nodiscard]] bool needs_commit() const noexcept { return open_hold_; }
  /// The round's commit starts: the output held for it ends at the current end.
  void cut_for_commit() noexcept;
  /// The oldest commit this session was cut for is done: its output may leave.
  void committed() noexcept;
  /// Writes what may leave (called once per turn by the server, and after a commit).
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
  bool open_hold_ = false;         ///< out_ waits for the round being gathered
  /// out_[0, cut_ends_[i]) waits for the i-th oldest commit under way (i < cuts_).
  std::array<std::size_t, kMaxCommitsInFlight> cut_ends_{};
  std::uint8_t cuts_ = 0;
  std::size_t released_ = 0;       ///< out_[0, released_) may leave despite later holds
  bool reading_paused_ = false;  ///< backpressure: too much output not yet taken
  bool read_pending_ = false;
};

}  // namespace sd::server
