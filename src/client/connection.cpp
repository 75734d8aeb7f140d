#include "client/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "common/duration.hpp"

namespace sd::client {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

/// A deadline far enough away to mean "none", without overflowing clock arithmetic.
Clock::time_point clamp_deadline(Clock::time_point deadline) {
  const auto far = Clock::now() + std::chrono::hours(24 * 365);
  return deadline > far ? far : deadline;
}

}  // namespace

Connection::Connection(const ConnectOptions& options) : options_(options), socket_(io_) {
  const auto deadline = Clock::now() + options_.timeout;
  auto fail = [&](const std::string& reason) {
    throw ClientError(ErrorKind::connect, "no se pudo conectar a " + endpoint() + ": " + reason);
  };
  const std::string timeout_reason = "tiempo de espera agotado (" + format_duration(options_.timeout) + ")";

  tcp::resolver resolver(io_);
  bool done = false;
  boost::system::error_code ec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(options_.host, std::to_string(options_.port),
                         [&](const boost::system::error_code& e, tcp::resolver::results_type r) {
                           ec = e;
                           endpoints = std::move(r);
                           done = true;
                         });
  if (!run_until(deadline, done, [&] { resolver.cancel(); })) fail(timeout_reason);
  if (ec) fail(ec.message());

  done = false;
  asio::async_connect(socket_, endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  if (!run_until(deadline, done)) fail(timeout_reason);
  if (ec) fail(ec.message());
  socket_.set_option(tcp::no_delay(true), ec);  // small request/response messages
  if (!options_.token.empty()) authenticate();
}

Connection::~Connection() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

std::string Connection::endpoint() const {
  return options_.host + ":" + std::to_string(options_.port);
}

bool Connection::run_until(Clock::time_point deadline, const bool& done,
                           const std::function<void()>& cancel) {
  deadline = clamp_deadline(deadline);
  io_.restart();
  while (!done) {
    if (io_.run_one_until(deadline) == 0) break;
  }
  if (done) return true;
  if (cancel) {
    cancel();
  } else {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }
  io_.restart();
  io_.run();  // lets the cancelled handlers run, so nothing refers to this frame
  return false;
}

void Connection::throw_lost(const boost::system::error_code& ec) const {
  if (ec == asio::error::eof) {
    throw ClientError(ErrorKind::lost, "el servidor " + endpoint() + " cerró la conexión");
  }
  throw ClientError(ErrorKind::lost, "se perdió la conexión con " + endpoint() + ": " + ec.message());
}

void Connection::authenticate() {
  std::string ping = "{\"type\":\"PING\",\"token\":";
  proto::append_json_string(ping, options_.token);
  ping += "}\n";
  send_raw(ping);
  const auto deadline = Clock::now() + options_.timeout;
  for (;;) {
    std::optional<proto::Envelope> env;
    try {
      env = receive(deadline);
    } catch (const ClientError& e) {
      // A server that refuses a token may close right after saying why; if it closed
      // without a word the token is still the likely reason.
      if (e.kind() == ErrorKind::lost) {
        throw ClientError(ErrorKind::unauthorized, "no autorizado: " + std::string(e.what()));
      }
      throw;
    }
    if (!env) {
      throw ClientError(ErrorKind::timeout, "sin respuesta de " + endpoint() + " a la autenticación");
    }
    if (std::holds_alternative<proto::PongMsg>(env->message)) return;
    if (const auto* err = std::get_if<proto::ErrorMsg>(&env->message)) {
      if (err->code == proto::ErrorCode::unauthorized) {
        throw ClientError(ErrorKind::unauthorized, "no autorizado: " + err->message);
      }
      throw ClientError(ErrorKind::rejected, std::string(proto::to_string(err->code)) + ": " + err->message);
    }
    // Anything else (a PING from the server) is not the answer; keep waiting.
  }
}

void Connection::send(const proto::Message& message) { send_raw(proto::to_json_line(message)); }

void Connection::send_raw(std::string_view bytes) {
  bool done = false;
  boost::system::error_code ec;
  asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                    [&](const boost::system::error_code& e, std::size_t) {
                      ec = e;
                      done = true;
                    });
  if (!run_until(Clock::now() + options_.timeout, done)) {
    throw ClientError(ErrorKind::lost,
                      "el servidor " + endpoint() + " no acepta datos (" + format_duration(options_.timeout) + ")");
  }
  if (ec) throw_lost(ec);
}

proto::Envelope Connection::decode_or_throw(std::string_view frame) {
  auto decoded = proto::decode(frame);
  if (auto* err = std::get_if<proto::DecodeError>(&decoded)) {
    throw ClientError(ErrorKind::protocol, "respuesta inválida del servidor: " + err->message);
  }
  return std::get<proto::Envelope>(std::move(decoded));
}

std::optional<proto::Envelope> Connection::receive(Clock::time_point deadline) {
  for (;;) {
    const proto::Frame frame = decoder_.next();
    if (frame.kind == proto::Frame::Kind::message) {
      last_frame_.assign(frame.text);
      return decode_or_throw(last_frame_);
    }
    if (frame.kind == proto::Frame::Kind::error) {
      if (frame.fatal) {
        throw ClientError(ErrorKind::protocol, "respuesta inválida del servidor: " + std::string(frame.detail));
      }
      continue;  // the decoder skipped to the next line; carry on
    }
    bool done = false;
    boost::system::error_code ec;
    std::size_t n = 0;
    socket_.async_read_some(asio::buffer(decoder_.prepare(kReadChunk), kReadChunk),
                            [&](const boost::system::error_code& e, std::size_t got) {
                              ec = e;
                              n = got;
                              done = true;
                            });
    const bool completed = run_until(deadline, done);
    decoder_.commit(n);
    if (n > 0) continue;  // bytes that arrived just as the deadline passed still count
    if (!completed) return std::nullopt;
    if (ec) throw_lost(ec);
  }
}

}  // namespace sd::client
