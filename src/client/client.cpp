#include "client/client.hpp"

#include <random>

#include "common/duration.hpp"

namespace sd::client {

TaskIdGenerator::TaskIdGenerator() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  constexpr std::string_view hex = "0123456789abcdef";
  const std::uint64_t bits = rng();
  for (int i = 0; i < 12; ++i) prefix_.push_back(hex[(bits >> (4 * i)) & 0xF]);
}

std::string TaskIdGenerator::next() { return prefix_ + "-" + std::to_string(++counter_); }

proto::ResultMsg error_result(const std::string& task_id, const proto::ErrorMsg& error) {
  proto::ResultMsg r;
  r.task_id = task_id;
  r.ok = false;
  r.error_code = error.code;
  r.error_message = error.message;
  return r;
}

Client::Client(const ConnectOptions& options) : conn_(options) {}

std::string Client::submit(proto::TaskMsg task) {
  if (task.task_id.empty()) task.task_id = ids_.next();
  conn_.send(task);
  return task.task_id;
}

proto::Envelope Client::next_message(Clock::time_point deadline, std::string_view what) {
  for (;;) {
    auto env = conn_.receive(deadline);
    if (!env) {
      throw ClientError(ErrorKind::timeout,
                        "timeout: sin respuesta de " + conn_.endpoint() + " a " + std::string(what));
    }
    if (std::holds_alternative<proto::PingMsg>(env->message)) {
      conn_.send(proto::PongMsg{});
      continue;
    }
    if (const auto* err = std::get_if<proto::ErrorMsg>(&env->message);
        err != nullptr && err->code == proto::ErrorCode::unauthorized) {
      throw ClientError(ErrorKind::unauthorized, "no autorizado: " + err->message);
    }
    return std::move(*env);
  }
}

bool Client::stash(const proto::Envelope& env) {
  if (const auto* r = std::get_if<proto::ResultMsg>(&env.message)) {
    early_[r->task_id] = Stashed{*r, conn_.last_frame()};
    return true;
  }
  if (const auto* e = std::get_if<proto::ErrorMsg>(&env.message); e != nullptr && !e->task_id.empty()) {
    early_[e->task_id] = Stashed{error_result(e->task_id, *e), conn_.last_frame()};
    return true;
  }
  return false;
}

proto::ResultMsg Client::wait_result(const std::string& task_id, std::chrono::milliseconds timeout) {
  if (auto it = early_.find(task_id); it != early_.end()) {
    proto::ResultMsg r = std::move(it->second.result);
    last_raw_ = std::move(it->second.raw);
    early_.erase(it);
    return r;
  }
  const auto deadline = Clock::now() + timeout;
  const std::string what = "la tarea " + task_id + " en " + format_duration(timeout);
  for (;;) {
    proto::Envelope env = next_message(deadline, what);
    if (auto* r = std::get_if<proto::ResultMsg>(&env.message); r != nullptr && r->task_id == task_id) {
      last_raw_ = conn_.last_frame();
      return std::move(*r);
    }
    if (auto* e = std::get_if<proto::ErrorMsg>(&env.message);
        e != nullptr && (e->task_id == task_id || e->task_id.empty())) {
      last_raw_ = conn_.last_frame();
      return error_result(task_id, *e);
    }
    stash(env);  // a result of another task, or a late reply: keep or ignore it
  }
}

proto::ResultMsg Client::run(std::string_view task_type, std::string_view task_data_json,
                             std::chrono::milliseconds timeout) {
  proto::TaskMsg t;
  t.task_type = std::string(task_type);
  t.task_data = std::string(task_data_json);
  return wait_result(submit(std::move(t)), timeout);
}

std::string Client::submit_async(proto::TaskMsg task, std::chrono::milliseconds timeout) {
  task.reply = proto::ReplyMode::ack;
  const std::string id = submit(std::move(task));
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    proto::Envelope env = next_message(deadline, "la tarea " + id);
    if (auto* a = std::get_if<proto::AcceptedMsg>(&env.message); a != nullptr && a->task_id == id) return id;
    if (auto* e = std::get_if<proto::ErrorMsg>(&env.message);
        e != nullptr && (e->task_id == id || e->task_id.empty())) {
      throw ClientError(ErrorKind::rejected, std::string(proto::to_string(e->code)) + ": " + e->message);
    }
    stash(env);
  }
}

std::variant<proto::ResultMsg, proto::StatusMsg> Client::get_result(const std::string& task_id,
                                                                   std::int64_t wait_ms) {
  if (auto it = early_.find(task_id); it != early_.end()) {
    proto::ResultMsg r = std::move(it->second.result);
    last_raw_ = std::move(it->second.raw);
    early_.erase(it);
    return r;
  }
  conn_.send(proto::GetResultMsg{task_id, wait_ms});
  // The server holds the request up to wait_ms; allow for that plus a normal round trip.
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms) + conn_.options().timeout;
  for (;;) {
    proto::Envelope env = next_message(deadline, "GET_RESULT de " + task_id);
    if (auto* r = std::get_if<proto::ResultMsg>(&env.message); r != nullptr && r->task_id == task_id) {
      last_raw_ = conn_.last_frame();
      return std::move(*r);
    }
    if (auto* s = std::get_if<proto::StatusMsg>(&env.message); s != nullptr && s->task_id == task_id) {
      last_raw_ = conn_.last_frame();
      return std::move(*s);
    }
    if (auto* e = std::get_if<proto::ErrorMsg>(&env.message);
        e != nullptr && (e->task_id == task_id || e->task_id.empty())) {
      last_raw_ = conn_.last_frame();
      return error_result(task_id, *e);
    }
    stash(env);
  }
}

std::string Client::stats(std::chrono::milliseconds timeout) {
  conn_.send(proto::StatsRequestMsg{});
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    proto::Envelope env = next_message(deadline, "STATS");
    if (auto* s = std::get_if<proto::StatsReplyMsg>(&env.message)) return std::move(s->json);
    if (auto* e = std::get_if<proto::ErrorMsg>(&env.message); e != nullptr && e->task_id.empty()) {
      throw ClientError(ErrorKind::rejected, std::string(proto::to_string(e->code)) + ": " + e->message);
    }
    stash(env);
  }
}

std::chrono::microseconds Client::ping(std::chrono::milliseconds timeout) {
  const auto start = Clock::now();
  conn_.send(proto::PingMsg{});
  const auto deadline = start + timeout;
  for (;;) {
    proto::Envelope env = next_message(deadline, "PING");
    if (std::holds_alternative<proto::PongMsg>(env.message)) {
      return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    }
    if (auto* e = std::get_if<proto::ErrorMsg>(&env.message); e != nullptr && e->task_id.empty()) {
      throw ClientError(ErrorKind::rejected, std::string(proto::to_string(e->code)) + ": " + e->message);
    }
    stash(env);
  }
}

}  // namespace sd::client
