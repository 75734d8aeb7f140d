#include "server/server.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <malloc.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

namespace sd::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using proto::ErrorCode;

namespace {

DispatcherOptions dispatcher_options(const ServerOptions& o, bool durable) {
  DispatcherOptions d;
  d.max_queued = o.max_queued;
  d.default_max_retries = o.default_max_retries;
  d.queue_timeout = o.queue_timeout;
  d.record_store_ops = durable;
  // A dispatch's "running" record (its attempt) waits this long for the task's result,
  // so that a short task costs the store two row writes (accepted, finished) instead of
  // three. What the record buys on a crash is only that a worker's late result for that
  // attempt is taken in; a task without one is run again after a restart (at-least-once).
  d.running_record_delay = std::chrono::milliseconds(50);
  if (durable) {
    // Server-made ids must not collide with those of earlier runs kept in the store:
    // t-<start time in base 36>-N.
    auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
    std::string b36;
    do {
      b36.insert(b36.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[ms % 36]);
      ms /= 36;
    } while (ms != 0);
    d.id_prefix = "t-" + b36;
  }
  return d;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr auto kStoreRetry = std::chrono::milliseconds(500);
constexpr auto kPurgeEvery = std::chrono::seconds(1);
constexpr std::int64_t kPurgeBatch = 1000;

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

Server::Server(asio::io_context& io, ServerOptions options, std::unique_ptr<store::TaskStore> store)
    : io_(io),
      options_(std::move(options)),
      durable_(store != nullptr && store->describe() != "memory"),
      dispatcher_(dispatcher_options(options_, durable_), *this),
      acceptor_(io),
      tick_timer_(io),
      heartbeat_timer_(io),
      shutdown_timer_(io),
      purge_timer_(io),
      store_(store ? std::move(store) : store::open_store("memory")),
      writer_(io, *store_, durable_),
      recent_(durable_ ? 0 : options_.recent_results),
      read_buffer_(256 * 1024) {}

std::size_t Server::recover() {
  now_ = Clock::now();
  dispatcher_.set_wall_clock_ms(wall_ms());
  dispatcher_.set_store_counts(store_->counts());
  const auto records = store_->load_unfinished();
  for (const auto& r : records) dispatcher_.restore(r, now_);
  if (durable_) {
    store_->for_each_done([this](std::string_view id, std::int64_t at) { done_ids_.add(id, at); });
  }
  // Tasks that were running are queued again: write that before anything else happens.
  store_->write(dispatcher_.take_batch());
  committed_seq_ = dispatcher_.next_seq();
  return records.size();
}

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
  schedule_purge(kPurgeEvery);
}

void Server::schedule_purge(std::chrono::milliseconds after) {
  purge_timer_.expires_after(after);
  purge_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_purge();
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
  if (turn_depth_++ == 0) {
    now_ = Clock::now();
    dispatcher_.set_wall_clock_ms(wall_ms());
  }
}

void Server::end_turn() {
  if (--turn_depth_ > 0) return;
  dispatcher_.dispatch(now_);
  // Group commit: everything the turns that were ready together accepted, dispatched and
  // finished is stored in one transaction before any of it is acknowledged, sent to a
  // worker or forwarded. The commit starts after the other ready handlers (post), on the
  // store's thread; while it runs, the loop goes on and gathers the next one.
  // Output that depends on nothing uncommitted (tasks for workers accepted in earlier
  // rounds, PONG, STATS, ERROR, STATUS) leaves now.
  flush_dirty();
  // (Without a durable store there is nothing to commit; the round still ends there
  // during a shutdown, which checks its progress at the end of each round.)
  if ((durable_ || shutting_down_) && !commit_scheduled_ && commits_inflight_ < Session::kMaxCommitsInFlight) {
    commit_scheduled_ = true;
    asio::post(io_, [this] { commit_turns(); });
  }
}

void Server::commit_turns() {
  commit_scheduled_ = false;
  if (commits_inflight_ < Session::kMaxCommitsInFlight) start_commit();
}

void Server::needs_commit(Session& s) {
  // Nothing is ever committed without a durable store: the output leaves this turn.
  if (durable_ && !s.needs_commit()) {
    s.mark_needs_commit();
    held_open_.push_back(s.shared_from_this());
  }
  s.mark_dirty();
}

store::WriteBatch Server::take_unstored() {
  store::WriteBatch batch = dispatcher_.take_batch();
  if (!pending_.empty()) {
    // What a failed write left goes first (ops on one task never overtake each other).
    pending_.append(std::move(batch));
    batch = std::exchange(pending_, {});
  }
  return batch;
}

Server::StoreOutcome Server::write_batch(store::TaskStore& st, const store::WriteBatch& batch) {
  StoreOutcome out;
  const auto t0 = Clock::now();
  try {
    st.write(batch);
    out.ok = true;
  } catch (const store::InvalidBatchError& e) {
    out.invalid = true;
    out.error = e.what();
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

void Server::release_held_open() {
  for (auto& s : std::exchange(held_open_, {})) {
    s->cut_for_commit();
    s->committed();
    s->flush();
  }
}

void Server::start_commit() {
  // While the store is failing, retry at most every kStoreRetry, not every round; the
  // server serves from memory meanwhile (STATS says so).
  const bool retry_later = !store_healthy_ && Clock::now() < store_retry_at_;
  if (commits_inflight_ > 0) {
    // A write that failed makes those queued behind it come back unwritten, and they
    // are retried first: nothing new may overtake them.
    if (retry_later || writer_.write_failed()) return;
  } else {
    writer_.clear_failure();
  }
  store::WriteBatch batch = take_unstored();
  const std::uint64_t seq = dispatcher_.next_seq();
  if (batch.empty() && commits_inflight_ > 0) return;  // what is held waits behind them
  if (batch.empty() || retry_later) {
    if (!batch.empty()) pending_ = std::move(batch);
    committed_seq_ = seq;
    release_held_open();
    if (shutting_down_) check_shutdown_progress();
    return;
  }
  for (auto& s : held_open_) s->cut_for_commit();
  held_cut_.push_back(std::exchange(held_open_, {}));
  ++commits_inflight_;
  auto job = std::make_shared<std::pair<store::WriteBatch, StoreOutcome>>(std::move(batch), StoreOutcome{});
  committing_.push_back(&job->first);
  writer_.run_write(
      [job](store::TaskStore& st) {
        job->second = write_batch(st, job->first);
        return job->second.ok;
      },
      [this, job, seq](bool ran) {
        job->second.skipped = !ran;  // behind a failed write: kept for the retry, in order
        commit_done(std::move(job->first), job->second, seq);
      });
}

void Server::commit_done(store::WriteBatch batch, const StoreOutcome& outcome, std::uint64_t seq) {
  --commits_inflight_;
  committing_.pop_front();  // this one: the writer finishes its jobs in order
  begin_turn();
  note_write(std::move(batch), outcome);
  // Committed, or the store is failing and the server serves from memory.
  committed_seq_ = seq;
  auto held = std::move(held_cut_.front());
  held_cut_.pop_front();
  for (auto& s : held) {
    s->committed();
    s->flush();
  }
  end_turn();  // the next commit, if anything waits for one
  if (shutting_down_) check_shutdown_progress();
}

void Server::note_write(store::WriteBatch batch, const StoreOutcome& outcome) {
  if (outcome.skipped) {
    pending_.append(std::move(batch));  // after the failed write's batch: order is kept
  } else if (outcome.ok) {
    ++store_writes_;
    store_write_seconds_ += outcome.seconds;
    if (!store_healthy_) {
      spdlog::info("Almacén recuperado: {} operaciones pendientes guardadas", batch.size());
      store_healthy_ = true;
    }
  } else if (outcome.invalid) {
    // Cannot succeed on retry (accepted tasks are checked, so this is a bug): say so.
    spdlog::error("Almacén: lote rechazado ({} operaciones descartadas): {}", batch.size(), outcome.error);
    store_last_error_ = outcome.error;
  } else {
    ++store_failures_;
    store_last_error_ = outcome.error;
    if (store_healthy_) {
      spdlog::error("Almacén no disponible: {}. Se sigue atendiendo desde memoria; se reintenta", outcome.error);
      store_healthy_ = false;
    }
    store_retry_at_ = Clock::now() + kStoreRetry;
    // Operations recorded meanwhile are still in the dispatcher (or in the writes queued
    // behind this one, which come back skipped): these go first.
    pending_.append(std::move(batch));
  }
}

void Server::persist_now() {
  dispatcher_.record_waiting_starts();
  store::WriteBatch batch = take_unstored();
  if (batch.empty()) return;
  const StoreOutcome outcome = writer_.with_store([&](store::TaskStore& st) { return write_batch(st, batch); });
  note_write(std::move(batch), outcome);
}

void Server::on_purge() {
  begin_turn();
  const std::int64_t cutoff = wall_ms() - static_cast<std::int64_t>(options_.result_ttl.count());
  recent_.expire_before(cutoff);
  if (durable_) done_ids_.expire_before(cutoff);
  if (store_healthy_ && !purge_inflight_) {
    purge_inflight_ = true;
    auto out = std::make_shared<StoreOutcome>();
    writer_.run(
        [out, cutoff](store::TaskStore& st) {
          try {
            out->purged = st.purge_results_before(cutoff, kPurgeBatch);
            out->ok = true;
          } catch (const std::exception& e) {
            out->error = e.what();
          }
          // Give back to the system what big commits left free (a burst of accepted
          // tasks is held twice until its commit: in the dispatcher and in the batch).
          ::malloc_trim(0);
        },
        [this, out] {
          purge_inflight_ = false;
          if (!out->ok) {
            spdlog::warn("Almacén: no se pudieron borrar resultados caducados: {}", out->error);
          } else if (out->purged > 0) {
            dispatcher_.purged(out->purged);
            purged_total_ += out->purged;
            spdlog::debug("Almacén: {} resultados caducados borrados", out->purged);
          }
          // A full batch: more may be due; go on soon, letting the loop serve in between.
          if (!shutting_down_) {
            schedule_purge(out->purged >= kPurgeBatch ? std::chrono::milliseconds(10)
                                                      : std::chrono::milliseconds(kPurgeEvery));
          }
        });
  } else if (!shutting_down_) {
    schedule_purge(kPurgeEvery);
  }
  end_turn();
}

void Server::schedule_flush(std::shared_ptr<Session> s) { dirty_.push_back(std::move(s)); }

void Server::flush_dirty() {
  // flush() may complete synchronously and schedule again: swap first.
  std::vector<std::shared_ptr<Session>> batch;
  batch.swap(dirty_);
  for (auto& s : batch) s->flush();  // held output stays until its commit
}

void Server::on_tick() {
  begin_turn();
  dispatcher_.tick(now_);
  if (waiter_count_ > 0) expire_waiters();
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
          submit(s, std::move(m));
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
        } else if constexpr (std::is_same_v<M, proto::GetResultMsg>) {
          if (s.role() == Session::Role::worker) {
            reply_error(s, ErrorCode::unknown_message_type, "GET_RESULT is a client request", m.task_id);
            return;
          }
          handle_get_result(s, m);
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

// --- tasks and results ----------------------------------------------------------------

void Server::submit(Session& s, proto::TaskMsg m) {
  // Idempotency by task_id: the same finished task again gets its stored result without
  // running; different content under a finished id replaces it (a new task). An id that
  // is also pending is the dispatcher's to judge. find_done() comes first: it answers
  // "not finished" for almost every id from a small table, where the pending tasks' index
  // is large and the dispatcher looks the id up there anyway.
  if (!m.task_id.empty() && store::is_storable_text(m.task_id)) {
    if (auto done = find_done(m.task_id); done && dispatcher_.find_pending(m.task_id) == nullptr) {
      const std::string_view data = m.task_data.empty() ? std::string_view("{}") : std::string_view(m.task_data);
      if (done->task_type == m.task_type && done->task_data == data) {
        if (m.reply == proto::ReplyMode::ack) {
          proto::encode(s.output(), proto::Message{proto::AcceptedMsg{m.task_id}});
        }
        s.output().append(done->line);
        s.output().push_back('\n');
        needs_commit(s);
        return;
      }
      const std::string id = m.task_id;
      if (dispatcher_.submit(s.id(), std::move(m), now_)) {
        dispatcher_.replacing_done();
        recent_.erase(id);
      }
      return;
    }
  }
  dispatcher_.submit(s.id(), std::move(m), now_);
}

namespace {

/// What a batch's operations (oldest first) say last about one task.
struct BatchVerdict {
  enum class Kind : std::uint8_t { silent, done, unfinished } kind = Kind::silent;
  const store::StoredResult* result = nullptr;  ///< when done
  const store::StoredTask* task = nullptr;      ///< when the batch added it (last)
  bool dropped_before = false;                  ///< done, but the task itself was dropped first
};

BatchVerdict scan_batch(const store::WriteBatch& batch, std::string_view id) {
  using B = store::WriteBatch;
  BatchVerdict v;
  const auto& ops = batch.ops();
  for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
    if (const auto* f = std::get_if<B::Finish>(&*it); f != nullptr && f->result.task_id == id) {
      if (v.kind == BatchVerdict::Kind::silent) {
        v.kind = BatchVerdict::Kind::done;
        v.result = &f->result;
      }
    } else if (const auto* a = std::get_if<B::AddTask>(&*it); a != nullptr && a->task.task_id == id) {
      if (v.kind == BatchVerdict::Kind::silent) v.kind = BatchVerdict::Kind::unfinished;
      v.task = &a->task;
      return v;
    } else if (const auto* d = std::get_if<B::Drop>(&*it); d != nullptr && d->task_id == id) {
      if (v.kind == BatchVerdict::Kind::silent) v.kind = BatchVerdict::Kind::unfinished;
      v.dropped_before = true;
      return v;
    }
  }
  return v;
}

}  // namespace

std::vector<const store::WriteBatch*> Server::unstored_newest_first() const {
  // pending_ only ever holds operations older than any commit still under way: a failed
  // write's batch, then those queued behind it as they come back unwritten.
  std::vector<const store::WriteBatch*> out{&dispatcher_.batch()};
  out.insert(out.end(), committing_.rbegin(), committing_.rend());
  out.push_back(&pending_);
  return out;
}

std::optional<Server::DoneTask> Server::find_done(const std::string& task_id) {
  if (!durable_) {
    if (const auto* e = recent_.find(task_id)) {
      return DoneTask{std::string(e->task_type()), std::string(e->task_data()), std::string(e->line())};
    }
    return std::nullopt;
  }
  // A durable server files every finished id in done_ids_: an id it does not know is
  // new, with no lookup at all (the common case).
  if (!done_ids_.may_contain(task_id)) return std::nullopt;
  // Newest first: what is not yet stored (see unstored_newest_first), then the store
  // (after the commits under way).
  std::optional<DoneTask> found;
  const auto unstored = unstored_newest_first();
  for (auto b = unstored.begin(); b != unstored.end(); ++b) {
    const BatchVerdict v = scan_batch(**b, task_id);
    if (v.kind == BatchVerdict::Kind::unfinished) return std::nullopt;
    if (v.kind != BatchVerdict::Kind::done) continue;
    found = DoneTask{{}, {}, v.result->result_message_json};
    if (v.dropped_before) return DoneTask{{}, "{}", found->line};  // a result-only row
    if (v.task != nullptr) return DoneTask{v.task->task_type, v.task->task_data_json, found->line};
    // Its content was recorded earlier: in an older batch, or in the store.
    for (++b; b != unstored.end(); ++b) {
      const BatchVerdict older = scan_batch(**b, task_id);
      if (older.dropped_before) return DoneTask{{}, "{}", found->line};
      if (older.task != nullptr) return DoneTask{older.task->task_type, older.task->task_data_json, found->line};
    }
    break;
  }
  if (!store_healthy_) return std::nullopt;
  try {
    const auto t0 = Clock::now();
    auto done = writer_.with_store([&](store::TaskStore& st) -> std::optional<DoneTask> {
      auto rec = st.find_task(task_id);
      if (found) {
        return rec ? DoneTask{rec->task.task_type, rec->task.task_data_json, found->line} : DoneTask{{}, "{}", found->line};
      }
      if (!rec || rec->state != store::TaskState::done) return std::nullopt;
      auto res = st.find_result(task_id);
      if (!res) return std::nullopt;
      return DoneTask{rec->task.task_type, rec->task.task_data_json, res->result_message_json};
    });
    ++store_reads_;
    store_read_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    return done;
  } catch (const store::StoreError& e) {
    spdlog::warn("Almacén: no se pudo leer la tarea {}: {}", task_id, e.what());
    return found;
  }
}

std::optional<std::string> Server::find_result_line(const std::string& task_id) {
  if (!durable_) {
    if (const auto* e = recent_.find(task_id)) return std::string(e->line());
    return std::nullopt;
  }
  if (!done_ids_.may_contain(task_id)) return std::nullopt;
  for (const store::WriteBatch* b : unstored_newest_first()) {
    const BatchVerdict v = scan_batch(*b, task_id);
    if (v.kind == BatchVerdict::Kind::unfinished) return std::nullopt;
    if (v.kind == BatchVerdict::Kind::done) return v.result->result_message_json;
  }
  if (!store_healthy_) return std::nullopt;
  try {
    auto r = writer_.with_store([&](store::TaskStore& st) { return st.find_result(task_id); });
    if (r) return std::move(r->result_message_json);
  } catch (const store::StoreError& e) {
    spdlog::warn("Almacén: no se pudo leer el resultado de {}: {}", task_id, e.what());
  }
  return std::nullopt;
}

void Server::send_status(Session& s, const std::string& task_id) {
  std::string state = "unknown";
  if (auto st = dispatcher_.pending_state(task_id)) state = std::string(*st);
  proto::encode(s.output(), proto::Message{proto::StatusMsg{task_id, std::move(state)}});
  s.mark_dirty();
}

void Server::handle_get_result(Session& s, const proto::GetResultMsg& m) {
  if (dispatcher_.pending_state(m.task_id)) {
    if (m.wait_ms > 0) {
      waiters_[m.task_id].push_back(Waiter{s.id(), now_ + std::chrono::milliseconds(m.wait_ms)});
      ++waiter_count_;
      return;
    }
    send_status(s, m.task_id);
    return;
  }
  if (auto line = find_result_line(m.task_id)) {
    s.output().append(*line);
    s.output().push_back('\n');
    needs_commit(s);  // it may be this round's result
    return;
  }
  send_status(s, m.task_id);
}

void Server::expire_waiters() {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    auto& list = it->second;
    for (auto w = list.begin(); w != list.end();) {
      if (w->deadline > now_) {
        ++w;
        continue;
      }
      if (Session* s = session(w->conn)) send_status(*s, it->first);
      w = list.erase(w);
      --waiter_count_;
    }
    it = list.empty() ? waiters_.erase(it) : std::next(it);
  }
}

void Server::result_recorded(const proto::TaskMsg& task, const std::string& line) {
  if (durable_) {
    // The store has it (or will, with this round's commit): no second copy here.
    done_ids_.add(task.task_id, wall_ms());
  } else {
    recent_.put(task.task_id, task.task_type,
                task.task_data.empty() ? std::string_view("{}") : std::string_view(task.task_data), line, wall_ms());
  }
  if (waiter_count_ == 0) return;
  auto it = waiters_.find(task.task_id);
  if (it == waiters_.end()) return;
  for (const Waiter& w : it->second) {
    if (Session* s = session(w.conn)) {
      s->output().append(line);
      s->output().push_back('\n');
      needs_commit(*s);
    }
  }
  waiter_count_ -= it->second.size();
  waiters_.erase(it);
}

// --- DispatchSink ------------------------------------------------------------------------

void Server::send_task(ConnId worker, const proto::TaskMsg& task, std::uint64_t seq) {
  if (Session* s = session(worker)) {
    proto::encode(s->output(), task);
    // A task accepted in this round goes out only once its acceptance is stored; one
    // accepted earlier goes now (its "running" record follows with this round's commit:
    // a crash before it leaves the task queued in the store, run again after a restart).
    if (seq >= committed_seq_) {
      needs_commit(*s);
    } else {
      s->mark_dirty();
    }
  }
}

void Server::send_cancel(ConnId worker, const proto::CancelMsg& cancel) {
  if (Session* s = session(worker)) {
    proto::encode(s->output(), proto::Message{cancel});
    s->mark_dirty();
  }
}

void Server::send_result(ConnId client, const proto::ResultMsg& /*result*/, std::string_view line) {
  if (Session* s = session(client)) {
    s->output().append(line);
    s->output().push_back('\n');
    needs_commit(*s);
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
    needs_commit(*s);
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
    wo["window"] = w->window;
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
  o["attached"] = c.attached;
  o["recovered"] = c.recovered;
  {
    json::object st;
    st["uri"] = store_->describe();
    st["healthy"] = store_healthy_;
    if (!store_last_error_.empty()) st["last_error"] = store_last_error_;
    st["pending_ops"] = pending_.size();
    st["round_ops"] = dispatcher_.batch().size();
    st["held_running_records"] = dispatcher_.waiting_starts();
    st["commits_in_flight"] = commits_inflight_;
    st["failures"] = store_failures_;
    const auto& sc = dispatcher_.store_counts();
    st["queued"] = sc.queued;
    st["running"] = sc.running;
    st["done"] = sc.done;
    st["purged"] = purged_total_;
    st["writes"] = store_writes_;
    st["write_seconds"] = store_write_seconds_;
    st["reads"] = store_reads_;
    st["read_seconds"] = store_read_seconds_;
    o["store"] = std::move(st);
  }
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
  purge_timer_.cancel();
  const std::size_t queued = dispatcher_.queued_count();
  const std::size_t kept = dispatcher_.stop_accepting();
  spdlog::info("Apagando: {} tareas en cola respondidas con server_shutdown, {} asíncronas guardadas para el "
               "próximo arranque; esperando {} en curso (máx. {} ms)",
               queued - kept, kept, dispatcher_.running_count(), options_.grace.count());
  end_turn();
}

void Server::check_shutdown_progress() {
  if (!on_shutdown_done_) return;
  if (commits_inflight_ > 0) return;  // called again when they are done
  const bool grace_over = Clock::now() >= shutdown_deadline_;
  if (dispatcher_.running_count() > 0 && !grace_over) return;
  if (dispatcher_.running_count() > 0) {
    spdlog::warn("Plazo de gracia agotado: {} tareas en curso respondidas con server_shutdown",
                 dispatcher_.running_count());
    dispatcher_.fail_running();
  }
  // Store what is left (also the last chance for what a failing store could not take),
  // then let everything held for it leave.
  persist_now();
  if (!pending_.empty()) {
    spdlog::error("Almacén no disponible al apagar: {} operaciones no guardadas", pending_.size());
  }
  committed_seq_ = dispatcher_.next_seq();
  release_held_open();
  flush_dirty();
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
