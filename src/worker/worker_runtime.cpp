#include "worker/worker_runtime.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <spdlog/spdlog.h>

namespace sd::worker {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

WorkerRuntime::WorkerRuntime(asio::io_context& io, WorkerOptions options, const tasks::TaskRegistry& registry)
    : io_(io),
      options_(std::move(options)),
      registry_(registry),
      executor_(std::make_unique<Executor>(options_.threads)),
      resolver_(io),
      socket_(io),
      retry_timer_(io),
      backoff_(options_.backoff_initial),
      rng_(std::random_device{}()) {}

WorkerRuntime::~WorkerRuntime() {
  alive_ = false;
  for (auto& [id, r] : running_) r.stop.request_stop();
  executor_.reset();  // joins the pool before the members it uses go away
}

void WorkerRuntime::start() { connect(); }

void WorkerRuntime::connect() {
  if (stopped_) return;
  resolver_.async_resolve(
      options_.host, std::to_string(options_.port),
      [this](const boost::system::error_code& ec, const tcp::resolver::results_type& endpoints) {
        if (stopped_) return;
        if (ec) {
          schedule_reconnect(ec.message());
          return;
        }
        asio::async_connect(socket_, endpoints, [this](const boost::system::error_code& cec, const tcp::endpoint&) {
          if (stopped_) return;
          if (cec) {
            schedule_reconnect(cec.message());
            return;
          }
          on_connected();
        });
      });
}

void WorkerRuntime::schedule_reconnect(const std::string& why) {
  if (stopped_) return;
  if (draining_) {
    // Nothing more to report to anyone: stop.
    stopped_ = true;
    if (on_drained_) asio::post(io_, std::exchange(on_drained_, nullptr));
    return;
  }
  // Exponential backoff with +-25% jitter, capped, so a restarted server is not hit by
  // every worker at the same instant.
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  const auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(backoff_.count()) * jitter(rng_)));
  spdlog::warn("No se pudo conectar a {}:{} ({}); reintento en {:.1f} s", options_.host, options_.port, why,
               static_cast<double>(delay.count()) / 1000.0);
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) connect();
  });
}

void WorkerRuntime::on_connected() {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);  // read() reads only what is there
  connected_ = true;
  registered_ = false;
  ++generation_;
  decoder_ = proto::FrameDecoder();
  spdlog::info("Conectado al servidor {}:{}", options_.host, options_.port);
  proto::WorkerRegisterMsg reg;
  reg.threads = options_.threads;
  reg.prefetch = options_.prefetch;
  reg.task_types = registry_.names();
  reg.name = options_.name;
  std::string line;
  proto::encode(line, proto::Message{reg});
  if (!options_.token.empty()) {
    // Every message may carry the token; the server checks the first one.
    line.insert(line.size() - 2, ",\"token\":");
    std::string quoted;
    proto::append_json_string(quoted, options_.token);
    line.insert(line.size() - 2, quoted);
  }
  out_.append(line);
  flush();
  read();
}

void WorkerRuntime::read() {
  // Reactor style: wait until the socket is readable, then read what is there. (An
  // async_read_some tries a read at once, which after each message finds nothing: one
  // wasted system call per message.)
  socket_.async_wait(tcp::socket::wait_read, [this, gen = generation_](const boost::system::error_code& ec) {
    if (gen != generation_ || !connected_) return;
    if (ec) {
      disconnect(ec.message());
      return;
    }
    const std::size_t chunk = options_.read_chunk_bytes;
    bool lost = false;  // the connection went away while reading
    for (int reads = 0; reads < 16 && !lost; ++reads) {
      boost::system::error_code rec;
      char* dst = decoder_.prepare(chunk);
      const std::size_t n = socket_.read_some(asio::buffer(dst, chunk), rec);
      if (rec == asio::error::would_block || rec == asio::error::try_again) break;
      if (rec) {
        disconnect(rec == asio::error::eof ? "el servidor cerró la conexión" : rec.message());
        lost = true;
        break;
      }
      decoder_.commit(n);
      for (;;) {
        proto::Frame f = decoder_.next();
        if (f.kind == proto::Frame::Kind::incomplete) break;
        if (f.kind == proto::Frame::Kind::error) {
          spdlog::warn("Mensaje ilegible del servidor: {}", f.detail);
          if (f.fatal) {
            disconnect("mensaje demasiado grande");
            lost = true;
            break;
          }
          continue;
        }
        handle_frame(f.text);
        if (!connected_) {
          lost = true;
          break;
        }
      }
      if (n < chunk) break;  // that was all there was
    }
    // Tasks taken in before a loss run all the same: their results wait in undelivered_
    // for the next connection, like those of tasks already running.
    run_started_tasks();
    if (lost) return;
    flush();
    read();
  });
}

void WorkerRuntime::run_started_tasks() {
  // Tiny tasks (here_) run now, on this thread; the others go to the pool first, so
  // that it works meanwhile.
  const std::size_t pooled = batch_.size();
  // Nothing else out: the pool is idle, and these few tasks are all it will run.
  const bool pool_idle = pooled > 0 && pooled <= static_cast<std::size_t>(options_.threads) &&
                         running_.size() == pooled + here_.size();
  executor_->post_batch(batch_);
  if (!here_.empty()) {
    run_here();
  } else if (pool_idle && connected_) {
    await_results_briefly();
  }
}

void WorkerRuntime::handle_frame(std::string_view frame) {
  auto decoded = proto::decode(frame);
  if (auto* err = std::get_if<proto::DecodeError>(&decoded)) {
    spdlog::warn("Mensaje inválido del servidor: {}", err->message);
    return;
  }
  auto& msg = std::get<proto::Envelope>(decoded).message;
  if (auto* task = std::get_if<proto::TaskMsg>(&msg)) {
    start_task(std::move(*task));
  } else if (std::holds_alternative<proto::PingMsg>(msg)) {
    send(proto::PongMsg{});
  } else if (auto* cancel = std::get_if<proto::CancelMsg>(&msg)) {
    auto it = running_.find(cancel->task_id);
    if (it != running_.end() && (cancel->attempt == 0 || cancel->attempt == it->second.attempt)) {
      it->second.stop.request_stop();
    }
  } else if (auto* reg = std::get_if<proto::RegisteredMsg>(&msg)) {
    worker_id_ = reg->worker_id;
    registered_ = true;
    backoff_ = options_.backoff_initial;
    spdlog::info("Registrado con ID: {}", worker_id_);
    spdlog::info("Pool de hilos: {} hilos", options_.threads);
    // Results finished while the server was away: the server takes them if that attempt
    // is still the one it has out.
    if (!undelivered_.empty()) {
      spdlog::info("Enviando {} resultados pendientes de la conexión anterior", undelivered_.size());
      for (auto& r : undelivered_) {
        r.worker_id = worker_id_;
        proto::encode(out_, r);
      }
      undelivered_.clear();
    }
    if (draining_) send(proto::DrainMsg{});
  } else if (auto* error = std::get_if<proto::ErrorMsg>(&msg)) {
    spdlog::error("El servidor respondió con error {}: {}", proto::to_string(error->code), error->message);
    if (error->code == proto::ErrorCode::unauthorized) {
      stopped_ = true;
      if (on_fatal_) on_fatal_("no autorizado: " + error->message);
    }
  }
}

void WorkerRuntime::start_task(proto::TaskMsg task) {
  const bool tiny = task.task_data.size() <= kInlineMaxDataBytes &&
                    registry_.cost(task.task_type) == tasks::TaskCost::linear_in_input;
  Running& slot = running_[task.task_id];
  slot.attempt = task.attempt;
  slot.stop = std::stop_source();
  tasks::TaskContext ctx;
  ctx.stop = slot.stop.get_token();
  if (task.timeout_ms) ctx.deadline = Clock::now() + std::chrono::milliseconds(*task.timeout_ms);
  (tiny ? here_ : batch_).push_back([this, task = std::move(task), ctx]() mutable {
    const auto started = Clock::now();
    tasks::TaskOutcome outcome;
    boost::system::error_code ec;
    // task_data is small: parse it into a buffer on this thread's stack (no malloc for
    // the usual task), spilling to the heap only for big ones.
    unsigned char scratch[4096];
    boost::json::monotonic_resource arena(scratch, sizeof scratch);
    boost::json::value data = boost::json::parse(task.task_data, ec, &arena);
    if (ec || !data.is_object()) {
      outcome = tasks::TaskOutcome::failure(proto::ErrorCode::invalid_task, "'task_data' must be a JSON object");
    } else {
      outcome = registry_.run(task.task_type, data.get_object(), ctx);
    }
    proto::ResultMsg r;
    r.task_id = std::move(task.task_id);
    r.attempt = task.attempt;
    r.ok = outcome.ok;
    r.result = std::move(outcome.result_json);
    r.error_code = outcome.code;
    r.error_message = std::move(outcome.message);
    r.processing_time = std::chrono::duration<double>(Clock::now() - started).count();
    bool post = false;
    {
      std::lock_guard lock(done_mutex_);
      done_.push_back(Done{std::move(r)});
      done_count_.store(done_.size(), std::memory_order_release);
      // The I/O thread is waiting right here for it (await_results_briefly): no wake-up.
      if (!io_waiting_) post = !collect_posted_.exchange(true);
    }
    // One post per batch of results, not one per result.
    if (post && alive_) asio::post(io_, [this] { collect_results(); });
  });
}

void WorkerRuntime::run_here() {
  {
    std::lock_guard lock(done_mutex_);
    io_waiting_ = true;  // the jobs below must not post collect_results(): it follows
  }
  // Results leave every kHereFlushEvery tasks, so that the server works on them while
  // this thread runs the rest (a long batch would otherwise leave it idle meanwhile).
  std::size_t ran = 0;
  for (Executor::Job& job : here_) {
    job();
    if (++ran % kHereFlushEvery == 0 && ran < here_.size()) collect_results();
  }
  here_.clear();
  {
    std::lock_guard lock(done_mutex_);
    io_waiting_ = false;
  }
  collect_results();
}

void WorkerRuntime::await_results_briefly() {
  {
    std::lock_guard lock(done_mutex_);
    io_waiting_ = true;
  }
  const auto until = Clock::now() + kAwaitResults;
  while (done_count_.load(std::memory_order_acquire) == 0 && Clock::now() < until) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  {
    std::lock_guard lock(done_mutex_);
    io_waiting_ = false;  // from now on pool threads post as usual
  }
  if (done_count_.load(std::memory_order_acquire) > 0) collect_results();
}

void WorkerRuntime::collect_results() {
  std::vector<Done> done;
  {
    std::lock_guard lock(done_mutex_);
    done.swap(done_);
    done_count_.store(0, std::memory_order_release);
    collect_posted_ = false;
  }
  for (Done& d : done) {
    running_.erase(d.result.task_id);
    // A result of an earlier connection that finishes after this one registered goes
    // out now too (the server takes it if that attempt is still the one out); only
    // without a registered connection does it wait for the next REGISTERED.
    if (connected_ && registered_) {
      d.result.worker_id = worker_id_;
      proto::encode(out_, d.result);
    } else if (undelivered_.size() < 100'000) {
      undelivered_.push_back(std::move(d.result));
    }
  }
  flush();
  check_drained();
}

void WorkerRuntime::send(const proto::Message& m) {
  proto::encode(out_, m);
  flush();
}

void WorkerRuntime::flush() {
  if (!connected_ || !writing_.empty() || out_.empty()) return;
  // Try the send now (the socket is non-blocking); only a rest goes through asio.
  boost::system::error_code sec;
  const std::size_t sent = socket_.write_some(asio::buffer(out_), sec);
  if (!sec && sent == out_.size()) {
    out_.clear();
    // What the completion of an async_write would have checked.
    if (draining_) asio::post(io_, [this] { check_drained(); });
    return;
  }
  if (sec && sec != asio::error::would_block && sec != asio::error::try_again) {
    disconnect(sec.message());
    return;
  }
  out_.erase(0, sent);
  writing_.swap(out_);
  asio::async_write(socket_, asio::buffer(writing_), [this, gen = generation_](const boost::system::error_code& ec,
                                                                               std::size_t) {
    if (gen != generation_) return;
    writing_.clear();
    if (ec) {
      disconnect(ec.message());
      return;
    }
    flush();
    check_drained();
  });
}

void WorkerRuntime::disconnect(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  registered_ = false;
  ++generation_;  // in-flight handlers of this connection become no-ops
  boost::system::error_code ec;
  socket_.close(ec);
  out_.clear();
  writing_.clear();
  if (stopped_) return;
  spdlog::warn("Conexión con el servidor perdida: {}", why);
  backoff_ = options_.backoff_initial;
  schedule_reconnect(why);
}

void WorkerRuntime::drain(std::function<void()> done) {
  if (draining_) return;
  draining_ = true;
  on_drained_ = std::move(done);
  spdlog::info("Deteniendo: no se aceptan más tareas; terminando {} en curso", running_.size());
  if (connected_ && registered_) {
    send(proto::DrainMsg{});
  } else if (!connected_) {
    retry_timer_.cancel();
    stopped_ = true;
  }
  check_drained();
}

void WorkerRuntime::check_drained() {
  if (!draining_ || !on_drained_) return;
  if (!running_.empty()) return;
  if (connected_ && (!writing_.empty() || !out_.empty())) return;
  stopped_ = true;
  boost::system::error_code ec;
  retry_timer_.cancel();
  if (connected_) {
    connected_ = false;
    ++generation_;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }
  asio::post(io_, std::exchange(on_drained_, nullptr));
}

void WorkerRuntime::stop_now(std::function<void()> done) {
  stopped_ = true;
  for (auto& [id, r] : running_) r.stop.request_stop();
  boost::system::error_code ec;
  retry_timer_.cancel();
  resolver_.cancel();
  connected_ = false;
  ++generation_;
  socket_.close(ec);
  asio::post(io_, std::move(done));
}

}  // namespace sd::worker
