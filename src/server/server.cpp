#include "server/server.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

namespace sd::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using proto::ErrorCode;

namespace {

DispatcherOptions dispatcher_options(const ServerOptions& o) {
  DispatcherOptions d;
  d.max_queued = o.max_queued;
  d.default_max_retries = o.default_max_retries;
  d.queue_timeout = o.queue_timeout;
  return d;
}

bool tokens_equal(std::string_view a, std::string_view b) {
  // Constant time in the contents; the length of the server's token is not secret.
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

constexpr auto kTick = std::chrono::milliseconds(20);

/// Whether a connection must be admitted by its first message before anything is served.
bool must_authenticate(const ServerOptions& o, const Session& s) {
  return !o.token.empty() || (!o.insecure && !s.loopback_peer());
}

}  // namespace

Server::Server(asio::io_context& io, ServerOptions options)
    : io_(io),
      options_(std::move(options)),
      dispatcher_(dispatcher_options(options_), *this),
      acceptor_(io),
      tick_timer_(io),
      heartbeat_timer_(io),
      shutdown_timer_(io),
      read_buffer_(256 * 1024) {}

Server::~Server() = default;

void Server::start() {
  const tcp::endpoint ep(asio::ip::make_address(options_.host), options_.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
  started_at_ = now_ = Clock::now();
  do_accept();
  on_tick();
  heartbeat_timer_.expires_after(options_.heartbeat_interval);
  heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_heartbeat();
  });
}

void Server::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // EMFILE and friends: log, back off a little, keep serving the others.
      spdlog::warn("No se pudo aceptar una conexión: {}", ec.message());
      auto retry = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      retry->async_wait([this, retry](const boost::system::error_code&) { do_accept(); });
      return;
    }
    begin_turn();
    boost::system::error_code aec;
    const auto remote = socket.remote_endpoint(aec);
    const bool loopback = !aec && remote.address().is_loopback();
    if (sessions_.size() >= options_.max_connections) {
      std::string line;
      proto::encode(line, proto::ErrorMsg{ErrorCode::too_many_connections,
                                          "the server has " + std::to_string(sessions_.size()) +
                                              " connections, its maximum",
                                          {}});
      socket.non_blocking(true, aec);
      socket.write_some(asio::buffer(line), aec);
      socket.close(aec);
    } else {
      const ConnId id = next_conn_++;
      auto s = std::make_shared<Session>(*this, std::move(socket), id, options_.max_message_bytes, loopback);
      sessions_.emplace(id, s);
      s->start();
    }
    end_turn();
    do_accept();
  });
}

Session* Server::session(ConnId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void Server::forget(ConnId id) { sessions_.erase(id); }

void Server::begin_turn() {
  if (turn_depth_++ == 0) now_ = Clock::now();
}

void Server::end_turn() {
  if (--turn_depth_ > 0) return;
  dispatcher_.dispatch(now_);
  flush_dirty();
  if (shutting_down_) check_shutdown_progress();
}

void Server::schedule_flush(std::shared_ptr<Session> s) { dirty_.push_back(std::move(s)); }

void Server::flush_dirty() {
  // flush() may complete synchronously and schedule again: swap first.
  std::vector<std::shared_ptr<Session>> batch;
  batch.swap(dirty_);
  for (auto& s : batch) s->flush();
}

void Server::on_tick() {
  begin_turn();
  dispatcher_.tick(now_);
  end_turn();
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_tick();
  });
}

void Server::on_heartbeat() {
  begin_turn();
  for (ConnId id : dispatcher_.silent_workers(now_, options_.heartbeat_timeout)) {
    if (Session* s = session(id)) {
      spdlog::warn("Worker sin respuesta durante {} ms: se da por perdido ({})",
                   options_.heartbeat_timeout.count(), s->peer());
      s->close(true);
    }
  }
  for (const WorkerInfo* w : dispatcher_.workers()) {
    if (Session* s = session(w->conn)) proto::encode(s->output(), proto::PingMsg{}), s->mark_dirty();
  }
  end_turn();
  heartbeat_timer_.expires_after(options_.heartbeat_interval);
  heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_heartbeat();
  });
}

void Server::reply_error(Session& s, ErrorCode code, std::string message, std::string task_id) {
  proto::encode(s.output(), proto::ErrorMsg{code, std::move(message), std::move(task_id)});
  s.mark_dirty();
}

void Server::on_frame_error(Session& s, const proto::Frame& f) {
  // Before authentication, an unreadable first message is refused like a token-less one.
  if (!f.fatal && !s.authenticated() && must_authenticate(options_, s)) {
    reply_error(s, ErrorCode::unauthorized, "a valid \"token\" is required in the first message");
    s.close();
    return;
  }
  reply_error(s, f.error, std::string(f.detail));
}

bool Server::admit(Session& s, const proto::Envelope& env) {
  if (!options_.token.empty()) {
    if (!env.token || !tokens_equal(*env.token, options_.token)) {
      reply_error(s, ErrorCode::unauthorized, "a valid \"token\" is required in the first message");
      spdlog::warn("Conexión rechazada de {}: token ausente o incorrecto", s.peer());
      return false;
    }
  } else if (!options_.insecure && !s.loopback_peer()) {
    reply_error(s, ErrorCode::unauthorized,
                "this server only serves loopback peers: start it with --token (recommended) or --insecure");
    spdlog::warn("Conexión rechazada de {}: modo protegido (sin --token ni --insecure)", s.peer());
    return false;
  }
  s.set_authenticated();
  return true;
}

void Server::on_frame(Session& s, std::string_view frame) {
  auto decoded = proto::decode(frame);
  if (auto* err = std::get_if<proto::DecodeError>(&decoded)) {
    if (!s.authenticated() && must_authenticate(options_, s)) {
      reply_error(s, ErrorCode::unauthorized, "a valid \"token\" is required in the first message");
      s.close();
      return;
    }
    reply_error(s, err->code, std::move(err->message), std::move(err->task_id));
    return;
  }
  auto& env = std::get<proto::Envelope>(decoded);
  if (!s.authenticated() && !admit(s, env)) {
    s.close();
    return;
  }
  handle(s, std::move(env));
}

void Server::handle(Session& s, proto::Envelope env) {
  if (s.role() == Session::Role::worker) dispatcher_.worker_seen(s.id(), now_);
  // The first message decides the role: WORKER_REGISTER makes a worker, anything else a client.
  if (s.role() == Session::Role::unknown && !std::holds_alternative<proto::WorkerRegisterMsg>(env.message)) {
    s.set_role(Session::Role::client);
  }
  std::visit(
      [&](auto&& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, proto::TaskMsg>) {
          if (s.role() == Session::Role::worker) {
            reply_error(s, ErrorCode::unknown_message_type, "a worker connection cannot submit tasks", m.task_id);
            return;
          }
          s.set_role(Session::Role::client);
          dispatcher_.submit(s.id(), std::move(m), now_);
        } else if constexpr (std::is_same_v<M, proto::WorkerRegisterMsg>) {
          if (s.role() != Session::Role::unknown) {
            reply_error(s, ErrorCode::unknown_message_type,
                        "WORKER_REGISTER must be the first message of a connection");
            return;
          }
          if (shutting_down_) {
            reply_error(s, ErrorCode::server_shutdown, "the server is shutting down");
            s.close();
            return;
          }
          s.set_role(Session::Role::worker);
          const WorkerInfo& w = dispatcher_.add_worker(s.id(), m, now_);
          proto::encode(s.output(), proto::RegisteredMsg{w.id, static_cast<int>(options_.heartbeat_interval.count())});
          s.mark_dirty();
          spdlog::info("Worker registrado: {} ({} hilos{}{}) desde {}", w.id, w.threads, w.name.empty() ? "" : ", ",
                       w.name, s.peer());
        } else if constexpr (std::is_same_v<M, proto::ResultMsg>) {
          if (s.role() != Session::Role::worker) {
            reply_error(s, ErrorCode::unknown_message_type, "RESULT is only accepted from a registered worker",
                        m.task_id);
            return;
          }
          dispatcher_.on_result(s.id(), std::move(m));
        } else if constexpr (std::is_same_v<M, proto::PingMsg>) {
          proto::encode(s.output(), proto::PongMsg{});
          s.mark_dirty();
        } else if constexpr (std::is_same_v<M, proto::DrainMsg>) {
          if (s.role() != Session::Role::worker) {
            reply_error(s, ErrorCode::unknown_message_type, "DRAIN is only accepted from a registered worker");
            return;
          }
          if (const WorkerInfo* w = dispatcher_.worker_draining(s.id())) {
            spdlog::info("Worker en retirada: {} termina sus {} tareas y no recibirá más", w->id, w->in_flight.size());
          }
        } else if constexpr (std::is_same_v<M, proto::PongMsg>) {
          // Liveness was recorded above.
        } else if constexpr (std::is_same_v<M, proto::StatsRequestMsg>) {
          s.append(stats_json());
          s.append("\n");
        } else {
          reply_error(s, ErrorCode::unknown_message_type,
                      "'" + std::string(proto::type_name(proto::Message{m})) + "' is not a request the server takes");
        }
      },
      std::move(env.message));
}

void Server::on_closed(Session& s) {
  if (s.role() == Session::Role::worker) {
    const auto workers = dispatcher_.workers();
    std::string id;
    std::size_t held = 0;
    for (const WorkerInfo* w : workers) {
      if (w->conn == s.id()) {
        id = w->id;
        held = w->in_flight.size();
      }
    }
    dispatcher_.worker_gone(s.id());
    spdlog::info("Worker desconectado: {} ({} tareas en curso devueltas a la cola)", id, held);
  } else {
    dispatcher_.client_gone(s.id());
  }
}

// --- DispatchSink ------------------------------------------------------------------------

void Server::send_task(ConnId worker, const proto::TaskMsg& task) {
  if (Session* s = session(worker)) {
    proto::encode(s->output(), task);
    s->mark_dirty();
  }
}

void Server::send_cancel(ConnId worker, const proto::CancelMsg& cancel) {
  if (Session* s = session(worker)) {
    proto::encode(s->output(), proto::Message{cancel});
    s->mark_dirty();
  }
}

void Server::send_result(ConnId client, const proto::ResultMsg& result) {
  if (Session* s = session(client)) {
    proto::encode(s->output(), result);
    s->mark_dirty();
  }
}

void Server::send_error(ConnId conn, const proto::ErrorMsg& error) {
  if (Session* s = session(conn)) {
    proto::encode(s->output(), error);
    s->mark_dirty();
  }
}

void Server::send_accepted(ConnId client, std::string_view task_id) {
  if (Session* s = session(client)) {
    proto::encode(s->output(), proto::Message{proto::AcceptedMsg{std::string(task_id)}});
    s->mark_dirty();
  }
}

// --- STATS ---------------------------------------------------------------------------------

std::string Server::stats_json() const {
  namespace json = boost::json;
  json::object o;
  o["type"] = "STATS";
  json::array workers;
  std::size_t slots = 0;
  for (const WorkerInfo* w : dispatcher_.workers()) {
    json::object wo;
    wo["id"] = w->id;
    if (!w->name.empty()) wo["name"] = w->name;
    wo["threads"] = w->threads;
    wo["in_flight"] = w->in_flight.size();
    wo["completed"] = w->completed;
    wo["failed"] = w->failed;
    if (w->draining) wo["draining"] = true;
    json::array types;
    for (const auto& t : w->task_types) types.emplace_back(t);
    wo["task_types"] = std::move(types);
    workers.emplace_back(std::move(wo));
    slots += static_cast<std::size_t>(w->threads);
  }
  const auto& c = dispatcher_.counters();
  std::size_t clients = 0;
  for (const auto& [id, s] : sessions_) {
    if (s->role() != Session::Role::worker) ++clients;
  }
  o["workers"] = std::move(workers);
  o["queued"] = dispatcher_.queued_count();
  o["in_flight"] = dispatcher_.running_count();
  o["pending"] = dispatcher_.pending_count();
  o["completed"] = c.completed;
  o["failed"] = c.failed;
  o["accepted"] = c.accepted;
  o["rejected"] = c.rejected;
  o["requeued"] = c.requeued;
  o["stale_results"] = c.stale_results;
  o["clients"] = clients;
  o["connections"] = sessions_.size();
  o["threads"] = slots;
  o["uptime"] = std::chrono::duration<double>(Clock::now() - started_at_).count();
  return json::serialize(o);
}

// --- shutdown ----------------------------------------------------------------------------

void Server::shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  on_shutdown_done_ = std::move(done);
  shutdown_deadline_ = Clock::now() + options_.grace;
  boost::system::error_code ec;
  acceptor_.close(ec);
  begin_turn();
  const std::size_t queued = dispatcher_.queued_count();
  dispatcher_.stop_accepting();
  spdlog::info("Apagando: {} tareas en cola respondidas con server_shutdown; esperando {} en curso (máx. {} ms)",
               queued, dispatcher_.running_count(), options_.grace.count());
  end_turn();
}

void Server::check_shutdown_progress() {
  if (!on_shutdown_done_) return;
  const bool grace_over = Clock::now() >= shutdown_deadline_;
  if (dispatcher_.running_count() > 0 && !grace_over) return;
  if (dispatcher_.running_count() > 0) {
    spdlog::warn("Plazo de gracia agotado: {} tareas en curso respondidas con server_shutdown",
                 dispatcher_.running_count());
    dispatcher_.fail_running();
    flush_dirty();
  }
  auto done = std::move(on_shutdown_done_);
  on_shutdown_done_ = nullptr;
  tick_timer_.cancel();
  heartbeat_timer_.cancel();
  // Let the last replies leave, then close every connection (bounded: 2 s).
  std::vector<std::shared_ptr<Session>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (auto& s : all) s->close();
  wait_sessions_closed(Clock::now() + std::chrono::seconds(2), std::move(done));
}

void Server::wait_sessions_closed(TimePoint deadline, std::function<void()> done) {
  if (sessions_.empty() || Clock::now() >= deadline) {
    std::vector<std::shared_ptr<Session>> rest;
    for (auto& [id, s] : sessions_) rest.push_back(s);
    for (auto& s : rest) s->close(true);
    done();
    return;
  }
  shutdown_timer_.expires_after(kTick);
  shutdown_timer_.async_wait([this, deadline, done = std::move(done)](const boost::system::error_code&) mutable {
    wait_sessions_closed(deadline, std::move(done));
  });
}

}  // namespace sd::server
