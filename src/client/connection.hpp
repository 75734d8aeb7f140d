#pragma once
/// One TCP connection to the server, blocking calls with deadlines on a private
/// io_context (no threads).
///
///   client                                   server
///     | -- {"type":"PING","token":"..."}\n -->  |   only when a token is set:
///     | <------------- {"type":"PONG"}\n -----  |   the first message authenticates
///     | -- {"type":"TASK",...}\n ------------>  |
///     | <-------------- {"type":"RESULT",...}   |   objects back to back, any whitespace
///
/// Reads go through proto::FrameDecoder and proto::decode, so one read may yield many
/// messages and one message may take many reads.
///
/// Thread-safety: none; use one Connection per thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"

namespace sd::client {

/// Why a ClientError was raised; the CLI maps these to exit statuses.
enum class ErrorKind {
  connect,       ///< the server could not be reached
  lost,          ///< the connection broke or the server closed it
  unauthorized,  ///< the server refused the token
  timeout,       ///< no answer before the deadline
  protocol,      ///< the server sent something this client cannot understand
  rejected,      ///< the server answered a request with an ERROR
};

/// A failure of the connection or of a request, with a one-line Spanish message,
/// e.g. "no se pudo conectar a localhost:9000: Connection refused".
class ClientError : public std::runtime_error {
 public:
  ClientError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

/// Where and how to connect.
struct ConnectOptions {
  std::string host = "localhost";
  std::uint16_t port = 9000;
  std::chrono::milliseconds timeout{30000};  ///< for connecting and for each write
  std::string token;                         ///< empty: no authentication
};

using Clock = std::chrono::steady_clock;

class Connection {
 public:
  /// Connects (and authenticates when `options.token` is set).
  /// Throws ClientError: connect (unreachable or timed out), unauthorized, lost.
  explicit Connection(const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Sends one message (compact JSON + '\n'). Throws ClientError lost/timeout.
  void send(const proto::Message& message);
  /// Sends bytes as they are, e.g. many encoded messages in one write.
  void send_raw(std::string_view bytes);

  /// The next message, or nullopt if none arrived before `deadline`.
  /// Throws ClientError lost (closed, reset) or protocol (undecodable, oversized).
  std::optional<proto::Envelope> receive(Clock::time_point deadline);

  /// The JSON text of the message last returned by receive(), as received.
  [[nodiscard]] const std::string& last_frame() const noexcept { return last_frame_; }

  /// "host:port", for messages.
  [[nodiscard]] std::string endpoint() const;
  [[nodiscard]] const ConnectOptions& options() const noexcept { return options_; }

  /// For the pipelined BatchRunner, which drives the socket with its own async ops on
  /// this io_context and feeds this decoder (so no received byte is ever lost).
  boost::asio::io_context& context() noexcept { return io_; }
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
  proto::FrameDecoder& decoder() noexcept { return decoder_; }

  /// Turns a decoded frame into an envelope, or throws ClientError protocol.
  static proto::Envelope decode_or_throw(std::string_view frame);

 private:
  /// Runs the io_context until `done` or `deadline`; on the deadline cancels the
  /// socket's operations (or calls `cancel`), drains them, and returns false.
  bool run_until(Clock::time_point deadline, const bool& done, const std::function<void()>& cancel = {});
  void authenticate();
  [[noreturn]] void throw_lost(const boost::system::error_code& ec) const;

  ConnectOptions options_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  proto::FrameDecoder decoder_;
  std::string last_frame_;
};

}  // namespace sd::client
