/// libFuzzer target for the wire protocol's decoding path: FrameDecoder -> decode ->
/// encode -> decode, and raw_member on what decoded.
///
/// Input layout (the first byte steers how the rest is fed, so the fuzzer explores
/// chunkings as well as contents):
///
///     [control][stream bytes ..........................................]
///      control & 0x3f   chunk size n; 0 = the whole stream in one feed()
///      control & 0x40   chunk sizes cycle 1, 2, ..., n (many split offsets per input)
///      control & 0x80   fed through prepare()/commit() with spare room, as a socket read
///
/// Invariants (a violation prints what and where, then aborts so libFuzzer keeps the input):
///  - framing: a message frame starts with '{', ends with '}' (or ']' for a frame the
///    decoder does not validate, which decode must then reject), is at most the decoder's
///    maximum (kMaxFrame, small so message_too_large is reached); only message_too_large
///    is fatal, and nothing follows it; buffered() never counts more than was fed;
///  - chunking: feeding in pieces gives the same frames and errors as feeding at once, up
///    to a frame that outgrew the maximum while incomplete (then fatal in pieces, possibly
///    a bad_json at once);
///  - round trip: a decoded message re-encodes to one line that frames back to itself,
///    decodes to the same type, and re-encodes to the same text (a fixed point);
///  - pass-through: the "task_data" of a TASK and the "result" of a RESULT, both as
///    raw_member finds them and as decode kept them, parse to the frame's own value;
///  - raw_member never returns a slice outside its input, valid JSON or not;
///  - decode (with its fast path for TASK and RESULT) and decode_full agree on every frame.
///
/// Known open bugs are stepped around (see "Known open bugs" below) so that a run goes on
/// finding new ones; SD_FUZZ_STRICT=1 in the environment turns them back into failures.

#include "proto/frame_decoder.hpp"
#include "proto/json_scan.hpp"
#include "proto/messages.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

namespace json = boost::json;
namespace proto = sd::proto;

constexpr std::size_t kMaxFrame = 4096;
constexpr std::size_t kPrepareSlack = 64;  ///< room prepare() makes beyond what arrives

[[noreturn]] void violated(const char* what, std::string_view context) {
  const auto shown = static_cast<int>(std::min<std::size_t>(context.size(), 600));
  std::fprintf(stderr, "\nfuzz_decoder: invariant violated: %s\n  context (%zu bytes): %.*s\n", what,
               context.size(), shown, context.data());
  std::abort();
}

void require(bool ok, const char* what, std::string_view context) {
  if (!ok) violated(what, context);
}

// ---- Known open bugs ------------------------------------------------------------------
// Reported to the lead, each with a reproducer in tests/fuzz/regressions/decoder/. The
// checks step around them, as narrowly as they can, so that a run goes on finding new
// bugs. To check a fix, make them failures again:
//   SD_FUZZ_STRICT=1 build-fuzz/bin/fuzz_decoder tests/fuzz/regressions/decoder/*
// and delete the entry here once it passes.

bool strict() {
  static const bool on = std::getenv("SD_FUZZ_STRICT") != nullptr;
  return on;
}

/// Members written in a valid JSON object's text, duplicates included: the ':' at depth 1.
std::size_t members_written(std::string_view object) {
  std::size_t count = 0;
  int depth = 0;
  bool in_string = false;
  bool escape = false;
  for (const char c : object) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == ':' && depth == 1) {
      ++count;
    }
  }
  return count;
}

/// A decoded frame whose pass-through and round-trip checks would hit a known bug.
bool hits_known_bug(std::string_view frame, const json::value& root, const proto::Message& m) {
  if (strict()) return false;
  // Duplicate keys: decode passes through what raw_member finds, the first "task_data" /
  // "result" written, where boost::json validated the last (a key spelled with escapes is
  // a duplicate raw_member cannot see), so the server forwards a payload it did not check.
  // duplicate_task_data_objects, duplicate_result, escaped_duplicate_task_data.
  const bool payload = std::holds_alternative<proto::TaskMsg>(m) || std::holds_alternative<proto::ResultMsg>(m);
  return payload && members_written(frame) > root.as_object().size();
}

// ---------------------------------------------------------------------------------------

/// One result of FrameDecoder::next(), kept beyond the next feed().
struct Event {
  proto::Frame::Kind kind = proto::Frame::Kind::incomplete;
  std::string text;
  proto::ErrorCode error = proto::ErrorCode::bad_json;
  bool fatal = false;

  bool operator==(const Event&) const = default;
  [[nodiscard]] bool is_error() const { return kind == proto::Frame::Kind::error; }
};

struct Feeding {
  std::size_t chunk = 0;  ///< 0 = all at once
  bool cycle = false;
  bool zero_copy = false;
};

/// Runs one decoder over `stream` fed as `how` says, checking the framing invariants.
std::vector<Event> split(std::string_view stream, Feeding how) {
  proto::FrameDecoder decoder(kMaxFrame);
  std::vector<Event> events;
  bool broken = false;
  std::size_t fed = 0;

  auto drain = [&] {
    for (;;) {
      const proto::Frame f = decoder.next();
      require(decoder.buffered() <= fed, "buffered() counts more bytes than were fed", stream);
      if (f.kind == proto::Frame::Kind::incomplete) return;
      require(!broken, "a frame or error after a fatal error", stream);
      Event e;
      e.kind = f.kind;
      if (f.kind == proto::Frame::Kind::message) {
        const std::string_view t = f.text;
        require(!t.empty() && t.front() == '{', "a message frame does not start with '{'", t);
        require(t.back() == '}' || t.back() == ']', "a message frame does not end with a bracket", t);
        require(t.size() <= kMaxFrame, "a message frame exceeds the decoder's maximum", t);
        e.text.assign(t);
      } else {
        require(!f.detail.empty(), "an error without detail", stream);
        require(f.fatal == (f.error == proto::ErrorCode::message_too_large),
                "fatal errors and message_too_large differ", f.detail);
        require(f.error == proto::ErrorCode::bad_json || f.error == proto::ErrorCode::message_too_large,
                "a framing error that is neither bad_json nor message_too_large", f.detail);
        e.error = f.error;
        e.fatal = f.fatal;
        broken = broken || f.fatal;
      }
      events.push_back(std::move(e));
    }
  };

  auto push = [&](std::string_view bytes) {
    if (how.zero_copy) {
      // A socket read: room for more than arrives, then commit what did.
      char* dst = decoder.prepare(bytes.size() + kPrepareSlack);
      if (!bytes.empty()) std::memcpy(dst, bytes.data(), bytes.size());
      decoder.commit(bytes.size());
    } else {
      decoder.feed(bytes);
    }
    fed += bytes.size();
    drain();
  };

  if (how.chunk == 0) {
    push(stream);
  } else {
    std::size_t size = how.cycle ? 1 : how.chunk;
    for (std::size_t at = 0; at < stream.size(); at += size) {
      if (how.cycle) size = size % how.chunk + 1;
      push(stream.substr(at, size));
    }
    // A peer that closes after a partial frame: the decoder must simply wait.
    push({});
  }
  return events;
}

/// Feeding in pieces changes nothing but how early an over-long frame is noticed.
void compare_chunkings(const std::vector<Event>& whole, const std::vector<Event>& pieces,
                       std::string_view stream) {
  const std::size_t n = std::min(whole.size(), pieces.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (whole[i] == pieces[i]) {
      if (whole[i].fatal) return;
      continue;
    }
    require(pieces[i].fatal && whole[i].is_error() && !whole[i].fatal,
            "chunked feeding gives other frames than feeding at once", stream);
    return;
  }
  if (whole.size() > n) {
    require(!pieces.empty() && pieces.back().fatal, "chunked feeding lost frames", stream);
  } else if (pieces.size() > n) {
    violated("chunked feeding gives extra frames", stream);
  }
}

json::value parse_or_die(std::string_view text, const char* what) {
  json::parse_options opts;
  opts.max_depth = proto::DecodeLimits{}.max_depth + 1;
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opts);
  if (ec) violated(what, text);
  return v;
}

/// Deep equality where a double may differ by rounding (boost::json's default number
/// parsing is not always correctly rounded) and NaN equals NaN (Boost 1.81 reads 0e999 as
/// NaN, 0 times infinity).
bool same_value(const json::value& a, const json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double();
    const double y = b.get_double();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    return x == y || std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const json::array& x = a.get_array();
    const json::array& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!same_value(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const json::object& x = a.get_object();
    const json::object& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& member : x) {
      const json::value* other = y.if_contains(member.key());
      if (other == nullptr || !same_value(member.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

/// raw_member must stay inside its input whatever the input is.
void check_raw_member_bounds(std::string_view text) {
  for (std::string_view key : {"type", "task_data", "result", ""}) {
    const auto raw = proto::raw_member(text, key);
    if (!raw) continue;
    require(raw->data() >= text.data() && raw->data() + raw->size() <= text.data() + text.size(),
            "raw_member returned a slice outside its input", text);
  }
}

/// The payload decode kept is the frame's own value for `key`, and so is what raw_member
/// finds when no key is written twice (with duplicates it finds the first written as
/// `key`, by contract, where the parsed object keeps the last).
void check_pass_through(std::string_view frame, const json::value& root, std::string_view key,
                        std::string_view kept) {
  const json::value* value = root.as_object().if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr) return;
  if (const auto raw = proto::raw_member(frame, key); raw && members_written(frame) == root.as_object().size()) {
    require(same_value(parse_or_die(*raw, "raw_member's slice is not valid JSON"), *value),
            "raw_member's slice differs from the frame's value", frame);
  }
  require(same_value(parse_or_die(kept, "a decoded payload is not valid JSON"), *value),
          "the decoded payload differs from the frame's value", frame);
}

/// Parsing a double is not always correctly rounded (boost::json's default number
/// parsing), so a re-read processing_time may move by an ulp; nothing else may change.
bool same_but_rounding(const proto::Message& a, const proto::Message& b) {
  const auto* ra = std::get_if<proto::ResultMsg>(&a);
  const auto* rb = std::get_if<proto::ResultMsg>(&b);
  if (ra == nullptr || rb == nullptr || !ra->processing_time || !rb->processing_time) return false;
  const double x = *ra->processing_time;
  const double y = *rb->processing_time;
  if (std::fabs(x - y) > 1e-12 * std::max(std::fabs(x), std::fabs(y))) return false;
  proto::ResultMsg aligned = *rb;
  aligned.processing_time = ra->processing_time;
  return proto::to_json_line(aligned) == proto::to_json_line(*ra);
}

void check_round_trip(proto::Message m) {
  const std::string line = proto::to_json_line(m);
  require(line.size() >= 2 && line.back() == '\n', "an encoding does not end with a newline", line);
  const std::string_view body(line.data(), line.size() - 1);
  // Known bug: a STATS reply is re-encoded as received, newlines included
  // (stats_reply_multiline; DISABLED_StatsReplyDecodedFromSeveralLinesIsEncodedOnOne).
  if (strict() || !std::holds_alternative<proto::StatsReplyMsg>(m)) {
    require(body.find('\n') == std::string_view::npos, "an encoding spans more than one line", line);
  }

  proto::FrameDecoder decoder;
  decoder.feed(line);
  const proto::Frame f = decoder.next();
  require(f.kind == proto::Frame::Kind::message && f.text == body, "an encoding does not frame back to itself",
          line);
  require(decoder.next().kind == proto::Frame::Kind::incomplete, "an encoding frames as more than one frame",
          line);

  auto again = proto::decode(body);
  const auto* env = std::get_if<proto::Envelope>(&again);
  if (env == nullptr) {
    const auto& err = std::get<proto::DecodeError>(again);
    std::string context = line + "  -> " + std::string(proto::to_string(err.code)) + ": " + err.message;
    violated("an encoded message does not decode", context);
  }
  require(proto::type_name(env->message) == proto::type_name(m), "a round trip changes the message type", line);
  const std::string line2 = proto::to_json_line(env->message);
  if (line2 != line && !same_but_rounding(m, env->message)) {
    violated("encode(decode(encode(m))) != encode(m)", line + "  re-encoded as  " + line2);
  }
}

/// Both decoders gave the same message (every field shows in its encoding) or error.
bool same_decoding(const std::variant<proto::Envelope, proto::DecodeError>& a,
                   const std::variant<proto::Envelope, proto::DecodeError>& b) {
  if (a.index() != b.index()) return false;
  if (const auto* ea = std::get_if<proto::DecodeError>(&a)) {
    const auto& eb = std::get<proto::DecodeError>(b);
    return ea->code == eb.code && ea->message == eb.message && ea->task_id == eb.task_id;
  }
  const auto& x = std::get<proto::Envelope>(a);
  const auto& y = std::get<proto::Envelope>(b);
  return x.token == y.token && proto::to_json_line(x.message) == proto::to_json_line(y.message);
}

void check_frame(std::string_view frame) {
  check_raw_member_bounds(frame);
  auto decoded = proto::decode(frame);
  // The fast path (TASK, successful RESULT) answers what the full decoder answers.
  require(same_decoding(decoded, proto::decode_full(frame)), "decode and decode_full disagree", frame);
  if (const auto* err = std::get_if<proto::DecodeError>(&decoded)) {
    require(!err->message.empty(), "a decode error without a message", frame);
    return;
  }
  require(frame.back() == '}', "decode accepted a frame that does not end with '}'", frame);
  const proto::Message& m = std::get<proto::Envelope>(decoded).message;
  const json::value root = parse_or_die(frame, "decode accepted a frame boost::json rejects");
  if (hits_known_bug(frame, root, m)) return;
  if (const auto* t = std::get_if<proto::TaskMsg>(&m)) {
    check_pass_through(frame, root, "task_data", t->task_data);
  } else if (const auto* r = std::get_if<proto::ResultMsg>(&m); r != nullptr && r->ok) {
    check_pass_through(frame, root, "result", r->result);
  }
  check_round_trip(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const Feeding how{control & 0x3fu, (control & 0x40u) != 0, (control & 0x80u) != 0};

  const std::vector<Event> whole = split(stream, Feeding{0, false, how.zero_copy});
  if (how.chunk != 0) compare_chunkings(whole, split(stream, how), stream);
  for (const Event& e : whole) {
    if (e.kind == proto::Frame::Kind::message) check_frame(e.text);
  }
  return 0;
}
