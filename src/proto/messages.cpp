#include "proto/messages.hpp"

#include "proto/fast_decode.hpp"
#include "proto/json_integer.hpp"
#include "proto/json_scan.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <charconv>
#include <limits>

namespace sd::proto {
namespace json = boost::json;

namespace {

/// Decoding state of one frame: the object and the error to report.
class Fields {
 public:
  explicit Fields(const json::object& obj) : obj_(obj) {}

  const json::value* find(std::string_view key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &it->value();
  }

  /// A string field: nullopt when absent; sets `bad` when present but not a string.
  std::optional<std::string> string(std::string_view key, bool& bad) const {
    const json::value* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) {
      bad = true;
      return std::nullopt;
    }
    return std::string(v->get_string());
  }

  /// An integer field in [lo, hi]; floats, bools and strings are not integers.
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t lo, std::int64_t hi,
                                      bool& bad) const {
    const json::value* v = find(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (v->is_int64()) return integer_in_range(v->get_int64(), lo, hi, bad);
    if (v->is_uint64()) return integer_in_range(v->get_uint64(), lo, hi, bad);
    bad = true;
    return std::nullopt;
  }

  std::optional<double> number(std::string_view key) const {
    const json::value* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_double()) return v->get_double();
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    if (v->is_uint64()) return static_cast<double>(v->get_uint64());
    return std::nullopt;
  }

 private:
  const json::object& obj_;
};

DecodeError error(ErrorCode code, std::string message, std::string task_id = {}) {
  return DecodeError{code, std::move(message), std::move(task_id)};
}

std::variant<Envelope, DecodeError> decode_task(const Fields& f, std::string_view frame,
                                                const DecodeLimits& limits) {
  TaskMsg t;
  bool bad = false;
  if (auto id = f.string("task_id", bad)) t.task_id = std::move(*id);
  if (bad) return error(ErrorCode::invalid_task, "'task_id' must be a string");
  if (t.task_id.size() > limits.max_task_id_bytes) {
    return error(ErrorCode::invalid_task, "'task_id' is longer than 256 bytes");
  }
  if (f.find("task_id") != nullptr && t.task_id.empty()) {
    return error(ErrorCode::invalid_task, "'task_id' must not be empty");
  }
  auto type = f.string("task_type", bad);
  if (bad || !type || type->empty()) {
    return error(ErrorCode::invalid_task, "'task_type' must be a non-empty string", t.task_id);
  }
  t.task_type = std::move(*type);
  const json::value* data = f.find("task_data");
  if (data == nullptr || !data->is_object()) {
    return error(ErrorCode::invalid_task, "'task_data' must be a JSON object", t.task_id);
  }
  // Pass task_data through as sent (exact numbers, no re-encoding cost).
  // A raw newline can only be whitespace between tokens; re-encode then, so that what
  // the server writes stays one line per message.
  // With a duplicated key the parser keeps the last value and raw_member finds the first:
  // forward the raw text only when it is an object too.
  if (auto raw = raw_member(frame, "task_data");
      raw && raw->front() == '{' && raw->find('\n') == std::string_view::npos) {
    t.task_data.assign(raw->data(), raw->size());
  } else {
    t.task_data = json::serialize(*data);
  }
  if (auto p = f.integer("priority", std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), bad)) {
    t.priority = static_cast<int>(*p);
  }
  if (bad) return error(ErrorCode::invalid_task, "'priority' must be an integer", t.task_id);
  t.timeout_ms = f.integer("timeout_ms", 1, std::int64_t{1} << 40, bad);
  if (bad) return error(ErrorCode::invalid_task, "'timeout_ms' must be a positive integer", t.task_id);
  if (auto r = f.integer("max_retries", 0, 100, bad)) t.max_retries = static_cast<int>(*r);
  if (bad) return error(ErrorCode::invalid_task, "'max_retries' must be an integer from 0 to 100", t.task_id);
  if (auto a = f.integer("attempt", 0, std::numeric_limits<std::uint32_t>::max(), bad)) {
    t.attempt = static_cast<std::uint32_t>(*a);
  }
  if (bad) return error(ErrorCode::invalid_task, "'attempt' must be a non-negative integer", t.task_id);
  if (auto reply = f.string("reply", bad)) {
    if (*reply == "ack") {
      t.reply = ReplyMode::ack;
    } else if (*reply != "result") {
      bad = true;
    }
  }
  if (bad) return error(ErrorCode::invalid_task, "'reply' must be \"result\" or \"ack\"", t.task_id);
  return Envelope{std::move(t), std::nullopt};
}

std::variant<Envelope, DecodeError> decode_result(const Fields& f, std::string_view frame) {
  ResultMsg r;
  bool bad = false;
  auto id = f.string("task_id", bad);
  if (bad || !id || id->empty()) return error(ErrorCode::invalid_task, "RESULT needs a string 'task_id'");
  r.task_id = std::move(*id);
  auto status = f.string("status", bad);
  if (bad || !status || (*status != "success" && *status != "error")) {
    return error(ErrorCode::invalid_task, "'status' must be \"success\" or \"error\"", r.task_id);
  }
  r.ok = *status == "success";
  if (r.ok) {
    const json::value* result = f.find("result");
    // Raw pass-through: integers of any size survive (boost::json would round them).
    if (result == nullptr) {
      r.result = "null";
    } else if (auto raw = raw_member(frame, "result"); raw && raw->find('\n') == std::string_view::npos) {
      r.result.assign(raw->data(), raw->size());
    } else {
      r.result = json::serialize(*result);
    }
  } else {
    const json::value* err = f.find("error");
    if (err != nullptr && err->is_object()) {
      Fields ef(err->get_object());
      bool ebad = false;
      auto code = ef.string("code", ebad);
      r.error_code = code ? error_code_from_string(*code).value_or(ErrorCode::internal) : ErrorCode::internal;
      r.error_message = ef.string("message", ebad).value_or("");
    } else {
      r.error_code = ErrorCode::internal;
      r.error_message = "the worker reported an error without details";
    }
  }
  r.worker_id = f.string("worker_id", bad).value_or("");
  r.processing_time = f.number("processing_time");
  bool abad = false;
  if (auto a = f.integer("attempt", 0, std::numeric_limits<std::uint32_t>::max(), abad)) {
    r.attempt = static_cast<std::uint32_t>(*a);
  }
  return Envelope{std::move(r), std::nullopt};
}

std::variant<Envelope, DecodeError> decode_register(const Fields& f) {
  WorkerRegisterMsg w;
  bool bad = false;
  if (auto t = f.integer("threads", 1, 4096, bad)) w.threads = static_cast<int>(*t);
  if (bad) return error(ErrorCode::invalid_task, "'threads' must be an integer from 1 to 4096");
  if (auto p = f.integer("prefetch", 0, 4096, bad)) w.prefetch = static_cast<int>(*p);
  if (bad) return error(ErrorCode::invalid_task, "'prefetch' must be an integer from 0 to 4096");
  if (const json::value* types = f.find("task_types"); types != nullptr && !types->is_null()) {
    if (!types->is_array()) return error(ErrorCode::invalid_task, "'task_types' must be an array of strings");
    for (const json::value& v : types->get_array()) {
      if (!v.is_string() || v.get_string().empty()) {
        return error(ErrorCode::invalid_task, "'task_types' must be an array of strings");
      }
      w.task_types.emplace_back(v.get_string());
    }
  }
  w.name = f.string("name", bad).value_or("");
  if (bad) return error(ErrorCode::invalid_task, "'name' must be a string");
  return Envelope{std::move(w), std::nullopt};
}

std::variant<Envelope, DecodeError> decode_error(const Fields& f) {
  ErrorMsg e;
  bool bad = false;
  auto code = f.string("code", bad);
  e.code = code ? error_code_from_string(*code).value_or(ErrorCode::internal) : ErrorCode::internal;
  e.message = f.string("message", bad).value_or("");
  e.task_id = f.string("task_id", bad).value_or("");
  return Envelope{std::move(e), std::nullopt};
}

std::variant<Envelope, DecodeError> decode_task_ref(const Fields& f, std::string_view type) {
  bool bad = false;
  auto id = f.string("task_id", bad);
  if (bad || !id || id->empty()) {
    return error(ErrorCode::invalid_task, std::string(type) + " needs a string 'task_id'");
  }
  if (type == "CANCEL") {
    CancelMsg c{std::move(*id), 0};
    if (auto a = f.integer("attempt", 0, std::numeric_limits<std::uint32_t>::max(), bad)) {
      c.attempt = static_cast<std::uint32_t>(*a);
    }
    return Envelope{std::move(c), std::nullopt};
  }
  if (type == "GET_RESULT") {
    GetResultMsg g{std::move(*id), 0};
    if (auto w = f.integer("wait_ms", 0, std::int64_t{1} << 40, bad)) g.wait_ms = *w;
    if (bad) return error(ErrorCode::invalid_task, "'wait_ms' must be a non-negative integer", g.task_id);
    return Envelope{std::move(g), std::nullopt};
  }
  if (type == "ACCEPTED") return Envelope{AcceptedMsg{std::move(*id)}, std::nullopt};
  StatusMsg s{std::move(*id), f.string("state", bad).value_or("unknown")};
  return Envelope{std::move(s), std::nullopt};
}

}  // namespace

namespace {

/// Whether `v` holds a number a double cannot represent: 1e999 parses as infinity and
/// 0e999 as NaN, which no JSON text can carry on (they would be re-encoded as inf / nan).
bool holds_non_finite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return !std::isfinite(v.get_double());
    case json::kind::array:
      for (const json::value& e : v.get_array()) {
        if (holds_non_finite(e)) return true;
      }
      return false;
    case json::kind::object:
      for (const auto& m : v.get_object()) {
        if (holds_non_finite(m.value())) return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

std::variant<Envelope, DecodeError> decode(std::string_view frame, const DecodeLimits& limits) {
  if (auto fast = decode_fast(frame, limits)) return std::move(*fast);
  return decode_full(frame, limits);
}

std::variant<Envelope, DecodeError> decode_full(std::string_view frame, const DecodeLimits& limits) {
  // Small messages parse into a stack buffer: no heap allocation for the DOM.
  std::array<unsigned char, 4096> scratch;
  json::monotonic_resource mr(scratch.data(), scratch.size());
  json::parse_options opts;
  opts.max_depth = limits.max_depth;
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(frame.data(), frame.size()), ec, &mr, opts);
  if (ec) return error(ErrorCode::bad_json, "invalid JSON: " + ec.message());
  if (!root.is_object()) return error(ErrorCode::bad_json, "a message must be a JSON object");
  if (holds_non_finite(root)) {
    return error(ErrorCode::bad_json, "invalid JSON: a number is too large (or small) for a double");
  }
  const json::object& obj = root.get_object();
  Fields f(obj);
  bool bad = false;
  auto type = f.string("type", bad);
  if (bad || !type) return error(ErrorCode::unknown_message_type, "a message needs a string 'type'");

  std::variant<Envelope, DecodeError> out = error(ErrorCode::unknown_message_type, "");
  const std::string& t = *type;
  if (t == "TASK") {
    out = decode_task(f, frame, limits);
  } else if (t == "RESULT") {
    out = decode_result(f, frame);
  } else if (t == "PING") {
    out = Envelope{PingMsg{}, std::nullopt};
  } else if (t == "PONG") {
    out = Envelope{PongMsg{}, std::nullopt};
  } else if (t == "DRAIN") {
    out = Envelope{DrainMsg{}, std::nullopt};
  } else if (t == "STATS") {
    // A request is {"type":"STATS"}; a reply carries figures.
    if (!obj.contains("workers") && !obj.contains("queued")) {
      out = Envelope{StatsRequestMsg{}, std::nullopt};
    } else {
      out = Envelope{StatsReplyMsg{std::string(frame)}, std::nullopt};
    }
  } else if (t == "WORKER_REGISTER") {
    out = decode_register(f);
  } else if (t == "REGISTERED") {
    RegisteredMsg r;
    r.worker_id = f.string("worker_id", bad).value_or("");
    if (auto h = f.integer("heartbeat_interval_ms", 0, std::numeric_limits<int>::max(), bad)) {
      r.heartbeat_interval_ms = static_cast<int>(*h);
    }
    out = Envelope{std::move(r), std::nullopt};
  } else if (t == "ERROR") {
    out = decode_error(f);
  } else if (t == "CANCEL" || t == "GET_RESULT" || t == "ACCEPTED" || t == "STATUS") {
    out = decode_task_ref(f, t);
  } else {
    std::string id = f.string("task_id", bad).value_or("");
    return error(ErrorCode::unknown_message_type, "unknown message type '" + t + "'", std::move(id));
  }
  if (auto* env = std::get_if<Envelope>(&out)) {
    bool tbad = false;
    env->token = f.string("token", tbad);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Encoding

void append_json_string(std::string& out, std::string_view s) {
  // Fast path: nothing to escape (the usual case for ids, types and short texts).
  bool plain = true;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.push_back('"');
    out.append(s);
    out.push_back('"');
    return;
  }
  out += json::serialize(json::string_view(s.data(), s.size()));
}

namespace {

void append_key(std::string& out, std::string_view key) {
  out.push_back(',');
  out.push_back('"');
  out.append(key);
  out.append("\":");
}

void append_int(std::string& out, std::int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append_double(std::string& out, double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view text(buf, static_cast<std::size_t>(end - buf));
  out.append(text);
  // Keep it a JSON float as Python writes it (0.5, 1e-05, 2.0).
  if (text.find_first_of(".eEn") == std::string_view::npos) out.append(".0");
}

}  // namespace

void encode(std::string& out, const TaskMsg& m) {
  out.append("{\"type\":\"TASK\"");
  if (!m.task_id.empty()) {  // absent: the server makes one
    append_key(out, "task_id");
    append_json_string(out, m.task_id);
  }
  append_key(out, "task_type");
  append_json_string(out, m.task_type);
  append_key(out, "task_data");
  out.append(m.task_data.empty() ? std::string_view("{}") : std::string_view(m.task_data));
  if (m.priority != 0) {
    append_key(out, "priority");
    append_int(out, m.priority);
  }
  if (m.timeout_ms) {
    append_key(out, "timeout_ms");
    append_int(out, *m.timeout_ms);
  }
  if (m.max_retries) {
    append_key(out, "max_retries");
    append_int(out, *m.max_retries);
  }
  if (m.attempt != 0) {
    append_key(out, "attempt");
    append_int(out, m.attempt);
  }
  if (m.reply == ReplyMode::ack) out.append(",\"reply\":\"ack\"");
  out.append("}\n");
}

void encode(std::string& out, const ResultMsg& m) {
  out.append("{\"type\":\"RESULT\",\"task_id\":");
  append_json_string(out, m.task_id);
  if (m.ok) {
    out.append(",\"status\":\"success\",\"result\":");
    out.append(m.result.empty() ? std::string_view("null") : std::string_view(m.result));
  } else {
    out.append(",\"status\":\"error\",\"error\":{\"code\":\"");
    out.append(to_string(m.error_code));
    out.append("\",\"message\":");
    append_json_string(out, m.error_message);
    out.push_back('}');
  }
  if (!m.worker_id.empty()) {
    append_key(out, "worker_id");
    append_json_string(out, m.worker_id);
  }
  if (m.processing_time) {
    append_key(out, "processing_time");
    append_double(out, *m.processing_time);
  }
  if (m.attempt != 0) {
    append_key(out, "attempt");
    append_int(out, m.attempt);
  }
  out.append("}\n");
}

void encode(std::string& out, const ErrorMsg& m) {
  out.append("{\"type\":\"ERROR\",\"code\":\"");
  out.append(to_string(m.code));
  out.append("\",\"message\":");
  append_json_string(out, m.message);
  if (!m.task_id.empty()) {
    append_key(out, "task_id");
    append_json_string(out, m.task_id);
  }
  out.append("}\n");
}

namespace {

struct Encoder {
  std::string& out;

  void operator()(const TaskMsg& m) const { encode(out, m); }
  void operator()(const ResultMsg& m) const { encode(out, m); }
  void operator()(const ErrorMsg& m) const { encode(out, m); }
  void operator()(const WorkerRegisterMsg& m) const {
    out.append("{\"type\":\"WORKER_REGISTER\",\"threads\":");
    append_int(out, m.threads);
    if (m.prefetch) {
      append_key(out, "prefetch");
      append_int(out, *m.prefetch);
    }
    if (!m.task_types.empty()) {
      append_key(out, "task_types");
      out.push_back('[');
      for (std::size_t i = 0; i < m.task_types.size(); ++i) {
        if (i != 0) out.push_back(',');
        append_json_string(out, m.task_types[i]);
      }
      out.push_back(']');
    }
    if (!m.name.empty()) {
      append_key(out, "name");
      append_json_string(out, m.name);
    }
    out.append("}\n");
  }
  void operator()(const RegisteredMsg& m) const {
    out.append("{\"type\":\"REGISTERED\",\"worker_id\":");
    append_json_string(out, m.worker_id);
    if (m.heartbeat_interval_ms != 0) {
      append_key(out, "heartbeat_interval_ms");
      append_int(out, m.heartbeat_interval_ms);
    }
    out.append("}\n");
  }
  void operator()(const PingMsg&) const { out.append("{\"type\":\"PING\"}\n"); }
  void operator()(const PongMsg&) const { out.append("{\"type\":\"PONG\"}\n"); }
  void operator()(const DrainMsg&) const { out.append("{\"type\":\"DRAIN\"}\n"); }
  void operator()(const StatsRequestMsg&) const { out.append("{\"type\":\"STATS\"}\n"); }
  void operator()(const StatsReplyMsg& m) const {
    // The reply is kept as it came; a frame spread over several lines becomes one line
    // (a raw line break in valid JSON can only be whitespace between tokens).
    const std::size_t from = out.size();
    out.append(m.json);
    std::replace_if(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(),
                    [](char c) { return c == '\n' || c == '\r'; }, ' ');
    out.push_back('\n');
  }
  void operator()(const CancelMsg& m) const {
    out.append("{\"type\":\"CANCEL\",\"task_id\":");
    append_json_string(out, m.task_id);
    append_key(out, "attempt");
    append_int(out, m.attempt);
    out.append("}\n");
  }
  void operator()(const GetResultMsg& m) const {
    out.append("{\"type\":\"GET_RESULT\",\"task_id\":");
    append_json_string(out, m.task_id);
    append_key(out, "wait_ms");
    append_int(out, m.wait_ms);
    out.append("}\n");
  }
  void operator()(const AcceptedMsg& m) const {
    out.append("{\"type\":\"ACCEPTED\",\"task_id\":");
    append_json_string(out, m.task_id);
    out.append("}\n");
  }
  void operator()(const StatusMsg& m) const {
    out.append("{\"type\":\"STATUS\",\"task_id\":");
    append_json_string(out, m.task_id);
    append_key(out, "state");
    append_json_string(out, m.state);
    out.append("}\n");
  }
};

struct Namer {
  std::string_view operator()(const TaskMsg&) const { return "TASK"; }
  std::string_view operator()(const ResultMsg&) const { return "RESULT"; }
  std::string_view operator()(const ErrorMsg&) const { return "ERROR"; }
  std::string_view operator()(const WorkerRegisterMsg&) const { return "WORKER_REGISTER"; }
  std::string_view operator()(const RegisteredMsg&) const { return "REGISTERED"; }
  std::string_view operator()(const PingMsg&) const { return "PING"; }
  std::string_view operator()(const PongMsg&) const { return "PONG"; }
  std::string_view operator()(const DrainMsg&) const { return "DRAIN"; }
  std::string_view operator()(const StatsRequestMsg&) const { return "STATS"; }
  std::string_view operator()(const StatsReplyMsg&) const { return "STATS"; }
  std::string_view operator()(const CancelMsg&) const { return "CANCEL"; }
  std::string_view operator()(const GetResultMsg&) const { return "GET_RESULT"; }
  std::string_view operator()(const AcceptedMsg&) const { return "ACCEPTED"; }
  std::string_view operator()(const StatusMsg&) const { return "STATUS"; }
};

}  // namespace

void encode(std::string& out, const Message& m) { std::visit(Encoder{out}, m); }

std::string to_json_line(const Message& m) {
  std::string out;
  encode(out, m);
  return out;
}

std::string_view type_name(const Message& m) { return std::visit(Namer{}, m); }

}  // namespace sd::proto
