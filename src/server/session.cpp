#include "server/session.hpp"

#include <boost/asio/write.hpp>

#include <algorithm>
#include <cassert>

#include "server/server.hpp"

namespace sd::server {

namespace asio = boost::asio;

Session::Session(Server& server, asio::ip::tcp::socket socket, ConnId id, std::size_t max_message_bytes,
                 bool loopback_peer)
    : server_(server),
      socket_(std::move(socket)),
      id_(id),
      decoder_(max_message_bytes),
      loopback_peer_(loopback_peer) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
}

void Session::start() { wait_readable(); }

void Session::wait_readable() {
  if (state_ != State::open || read_pending_ || reading_paused_) return;
  read_pending_ = true;
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->read_pending_ = false;
                       if (ec) {
                         if (self->state_ == State::open) self->close(true);
                         return;
                       }
                       self->on_readable();
                     });
}

void Session::on_readable() {
  if (state_ != State::open) return;
  server_.begin_turn();
  bool eof = false;
  // Read everything available now, but bounded, so one busy peer cannot starve the rest.
  for (int reads = 0; reads < 16 && state_ == State::open; ++reads) {
    boost::system::error_code ec;
    auto buf = server_.read_buffer();
    const std::size_t n = socket_.read_some(asio::buffer(buf.data(), buf.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {
      eof = true;
      break;
    }
    decoder_.feed(std::string_view(buf.data(), n));
    for (;;) {
      proto::Frame f = decoder_.next();
      if (f.kind == proto::Frame::Kind::incomplete) break;
      if (f.kind == proto::Frame::Kind::error) {
        server_.on_frame_error(*this, f);
        if (f.fatal) {
          close();
          break;
        }
        if (state_ != State::open) break;  // refused (unauthenticated)
        continue;
      }
      server_.on_frame(*this, f.text);
      if (state_ != State::open) break;
    }
    if (n < buf.size()) break;
  }
  if (eof) close(true);
  // The replies leave first (end_turn writes them), then reading is re-armed: that costs
  // an epoll_ctl, which a peer waiting for a reply should not wait for.
  server_.end_turn();
  if (state_ == State::open) {
    if (role_ == Role::client && over_high_water()) reading_paused_ = true;
    wait_readable();
  }
}

bool Session::over_high_water() const { return pending_output() > server_.options().client_high_water_bytes; }

void Session::append(std::string_view bytes) {
  if (state_ == State::closed) return;
  out_.append(bytes);
  mark_dirty();
}

void Session::mark_dirty() {
  if (dirty_ || state_ == State::closed) return;
  dirty_ = true;
  server_.schedule_flush(shared_from_this());
}

void Session::cut_for_commit() noexcept {
  if (!open_hold_) return;
  assert(cuts_ < cut_ends_.size());  // the server starts no more commits than that
  open_hold_ = false;
  cut_ends_[cuts_++] = out_.size();
}

void Session::committed() noexcept {
  if (cuts_ == 0) return;
  released_ = cut_ends_[0];
  std::copy(cut_ends_.begin() + 1, cut_ends_.begin() + cuts_, cut_ends_.begin());
  --cuts_;
}

void Session::flush() {
  dirty_ = false;
  if (state_ == State::closed || !writing_.empty() || out_.empty()) return;
  const std::size_t n = (open_hold_ || cuts_ > 0) ? released_ : out_.size();
  if (n == 0) return;
  if (n == out_.size()) {
    writing_.swap(out_);
  } else {
    writing_.assign(out_, 0, n);
    out_.erase(0, n);
  }
  released_ = 0;  // n is either released_ or everything
  for (std::size_t i = 0; i < cuts_; ++i) cut_ends_[i] -= n;
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->on_written(ec);
                    });
}

void Session::on_written(const boost::system::error_code& ec) {
  writing_.clear();
  if (ec) {
    if (state_ != State::closed) close(true);
    return;
  }
  if (!out_.empty()) {
    // What was appended meanwhile and may leave (what waits for a commit stays).
    flush();
    if (!writing_.empty()) return;
  }
  if (!out_.empty()) return;
  if (state_ == State::closing) {
    finish_close();
    return;
  }
  if (reading_paused_ && !over_high_water()) {
    reading_paused_ = false;
    wait_readable();
  }
}

void Session::close(bool now) {
  if (state_ == State::closed) return;
  const bool was_open = state_ == State::open;
  state_ = State::closing;
  if (was_open) server_.on_closed(*this);
  if (now || (out_.empty() && writing_.empty())) {
    finish_close();
  } else if (writing_.empty()) {
    flush();  // held output leaves after its commit (Server flushes it then)
  }
}

void Session::finish_close() {
  state_ = State::closed;
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  out_.clear();
  server_.forget(id_);
}

}  // namespace sd::server
