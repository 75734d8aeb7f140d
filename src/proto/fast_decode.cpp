#include "proto/fast_decode.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "proto/json_integer.hpp"
#include "proto/json_scan.hpp"

namespace sd::proto {
namespace json = boost::json;

namespace {

/// The top-level members either message may carry; the others are skipped.
enum class Field : std::uint8_t {
  type, task_id, task_type, task_data, priority, timeout_ms, max_retries, attempt, reply, token,
  status, result, worker_id, processing_time, count, other
};

constexpr std::array<std::string_view, static_cast<std::size_t>(Field::count)> kNames{
    "type",  "task_id", "task_type", "task_data", "priority",  "timeout_ms", "max_retries",
    "attempt", "reply", "token",     "status",    "result",    "worker_id",  "processing_time"};

Field field_of(std::string_view key) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == key) return static_cast<Field>(i);
  }
  return Field::other;
}

/// A top-level member's value: scalars kept, objects and arrays only noted.
struct Value {
  enum class Kind : std::uint8_t { absent, null, boolean, int64, uint64, dbl, string, object, array };
  Kind kind = Kind::absent;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0;
  std::string str;
};

/// SAX handler for basic_parser: fills one Value per Field of the root object. It stops
/// the parse (and the fast path) at what only the full decoder handles.
class Handler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (depth_ == 1) set(Value::Kind::object);
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    --depth_;
    return true;
  }
  bool on_array_begin(json::error_code& ec) {
    if (depth_ == 0) return stop(ec);  // a frame must be an object
    if (depth_ == 1) set(Value::Kind::array);
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    --depth_;
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (depth_ == 1) key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    if (depth_ != 1) return true;
    key_.append(s.data(), s.size());
    current_ = field_of(key_);
    key_.clear();
    // A duplicated field: the full decoder keeps the last one, raw_member none.
    if (current_ != Field::other && value().kind != Value::Kind::absent) return stop(ec);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    if (depth_ == 1 && current_ != Field::other) value().str.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (depth_ == 0) return stop(ec);
    if (depth_ != 1 || current_ == Field::other) return true;
    Value& v = value();
    v.str.append(s.data(), s.size());
    v.kind = Value::Kind::string;
    // Only TASK and RESULT take this path: stop at once for the others.
    if (current_ == Field::type && v.str != "TASK" && v.str != "RESULT") return stop(ec);
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t n, json::string_view, json::error_code& ec) {
    if (!scalar(Value::Kind::int64, ec)) return false;
    if (depth_ == 1 && current_ != Field::other) value().i = n;
    return true;
  }
  bool on_uint64(std::uint64_t n, json::string_view, json::error_code& ec) {
    if (!scalar(Value::Kind::uint64, ec)) return false;
    if (depth_ == 1 && current_ != Field::other) value().u = n;
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code& ec) {
    // 1e999 parses as infinity: the full decoder rejects it, wherever it is.
    if (!std::isfinite(d) || !scalar(Value::Kind::dbl, ec)) return stop(ec);
    if (depth_ == 1 && current_ != Field::other) value().d = d;
    return true;
  }
  bool on_bool(bool, json::error_code& ec) { return scalar(Value::Kind::boolean, ec); }
  bool on_null(json::error_code& ec) { return scalar(Value::Kind::null, ec); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

  Value& operator[](Field f) { return values_[static_cast<std::size_t>(f)]; }

 private:
  Value& value() { return values_[static_cast<std::size_t>(current_)]; }
  void set(Value::Kind kind) {
    if (current_ != Field::other) value().kind = kind;
  }
  bool scalar(Value::Kind kind, json::error_code& ec) {
    if (depth_ == 0) return stop(ec);
    if (depth_ == 1) set(kind);
    return true;
  }
  static bool stop(json::error_code& ec) {
    ec = json::make_error_code(json::error::extra_data);  // any error: the full decoder decides
    return false;
  }

  std::array<Value, static_cast<std::size_t>(Field::count)> values_;
  std::size_t depth_ = 0;
  Field current_ = Field::other;
  std::string key_;
};

/// Fields::integer of the full decoder: nullopt for absent or null, `bad` when present
/// but not an integer in [lo, hi].
std::optional<std::int64_t> integer(const Value& v, std::int64_t lo, std::int64_t hi, bool& bad) {
  switch (v.kind) {
    case Value::Kind::absent:
    case Value::Kind::null:
      return std::nullopt;
    case Value::Kind::int64:
      return integer_in_range(v.i, lo, hi, bad);
    case Value::Kind::uint64:
      return integer_in_range(v.u, lo, hi, bad);
    default:
      bad = true;
      return std::nullopt;
  }
}

std::optional<std::string> token_of(Value& v) {
  if (v.kind != Value::Kind::string) return std::nullopt;
  return std::move(v.str);
}

std::optional<Envelope> task(Handler& h, std::string_view frame, const DecodeLimits& limits) {
  TaskMsg t;
  Value& id = h[Field::task_id];
  if (id.kind == Value::Kind::string) {
    if (id.str.empty() || id.str.size() > limits.max_task_id_bytes) return std::nullopt;
    t.task_id = std::move(id.str);
  } else if (id.kind != Value::Kind::absent) {
    return std::nullopt;
  }
  Value& type = h[Field::task_type];
  if (type.kind != Value::Kind::string || type.str.empty()) return std::nullopt;
  t.task_type = std::move(type.str);
  if (h[Field::task_data].kind != Value::Kind::object) return std::nullopt;
  const auto raw = raw_member(frame, "task_data");
  if (!raw || raw->front() != '{' || raw->find('\n') != std::string_view::npos) return std::nullopt;
  t.task_data.assign(raw->data(), raw->size());
  bool bad = false;
  const auto priority =
      integer(h[Field::priority], std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), bad);
  t.timeout_ms = integer(h[Field::timeout_ms], 1, std::int64_t{1} << 40, bad);
  const auto retries = integer(h[Field::max_retries], 0, 100, bad);
  const auto attempt = integer(h[Field::attempt], 0, std::numeric_limits<std::uint32_t>::max(), bad);
  if (bad) return std::nullopt;
  if (priority) t.priority = static_cast<int>(*priority);
  if (retries) t.max_retries = static_cast<int>(*retries);
  if (attempt) t.attempt = static_cast<std::uint32_t>(*attempt);
  const Value& reply = h[Field::reply];
  if (reply.kind == Value::Kind::string && reply.str == "ack") {
    t.reply = ReplyMode::ack;
  } else if (reply.kind != Value::Kind::absent && !(reply.kind == Value::Kind::string && reply.str == "result")) {
    return std::nullopt;
  }
  return Envelope{std::move(t), token_of(h[Field::token])};
}

std::optional<Envelope> result(Handler& h, std::string_view frame) {
  ResultMsg r;
  Value& id = h[Field::task_id];
  if (id.kind != Value::Kind::string || id.str.empty()) return std::nullopt;
  const Value& status = h[Field::status];
  if (status.kind != Value::Kind::string || status.str != "success") return std::nullopt;
  r.task_id = std::move(id.str);
  r.ok = true;
  if (h[Field::result].kind == Value::Kind::absent) {
    r.result = "null";
  } else {
    const auto raw = raw_member(frame, "result");
    if (!raw || raw->find('\n') != std::string_view::npos) return std::nullopt;
    r.result.assign(raw->data(), raw->size());
  }
  Value& worker = h[Field::worker_id];
  if (worker.kind == Value::Kind::string) r.worker_id = std::move(worker.str);
  const Value& took = h[Field::processing_time];
  if (took.kind == Value::Kind::dbl) r.processing_time = took.d;
  if (took.kind == Value::Kind::int64) r.processing_time = static_cast<double>(took.i);
  if (took.kind == Value::Kind::uint64) r.processing_time = static_cast<double>(took.u);
  bool bad = false;  // as in the full decoder, a bad attempt is no attempt
  if (auto a = integer(h[Field::attempt], 0, std::numeric_limits<std::uint32_t>::max(), bad)) {
    r.attempt = static_cast<std::uint32_t>(*a);
  }
  return Envelope{std::move(r), token_of(h[Field::token])};
}

}  // namespace

std::optional<Envelope> decode_fast(std::string_view frame, const DecodeLimits& limits) {
  json::parse_options opts;
  opts.max_depth = limits.max_depth;
  json::basic_parser<Handler> parser(opts);
  json::error_code ec;
  // Whatever follows the document (not even whitespace is left over) is for the full
  // decoder to refuse.
  const std::size_t used = parser.write_some(false, frame.data(), frame.size(), ec);
  if (ec || !parser.done() || used != frame.size()) return std::nullopt;
  Handler& h = parser.handler();
  const Value& type = h[Field::type];
  if (type.kind != Value::Kind::string) return std::nullopt;
  return type.str == "TASK" ? task(h, frame, limits) : result(h, frame);
}

}  // namespace sd::proto
