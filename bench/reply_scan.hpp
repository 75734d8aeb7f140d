#pragma once
/// Cheap reading of server replies for sd-bench: no DOM, no allocation on the usual path.
///
/// sd-bench reads one reply per task, so building a JSON tree for each would make the
/// load generator measure itself. Instead it walks the top-level members of the reply
/// once and keeps spans into the frame:
///
///     {"type":"RESULT","task_id":"5f1c.m.42","status":"success","result":{"reversed":"..."},...}
///      ^key   ^value    ^key      ^value       ^key     ^value    ^key     ^value (raw JSON)
///
/// Values are only delimited, not validated; the one that matters, "result", is then
/// compared byte for byte with the expected text, and only if that fails, again after
/// both are put in canonical form (canonical_json), so a server that formats JSON
/// differently (spaces, escapes, member order) is still judged on the value alone.

#include <optional>
#include <string>
#include <string_view>

namespace sd::bench {

/// One member of a JSON object: `key` is the text between the key's quotes (still
/// escaped when `key_escaped`); `value` is the raw JSON text of the value (strings keep
/// their quotes).
struct Member {
  std::string_view key;
  bool key_escaped = false;
  std::string_view value;
};

/// Iterates over the members of one JSON object without building it.
/// Thread-safety: none; it reads the text it was given, which must outlive it.
class MemberScanner {
 public:
  /// `object` must start with '{' (leading whitespace allowed).
  explicit MemberScanner(std::string_view object);

  /// The next member; false at the end of the object or on malformed input.
  bool next(Member& m);

  /// False once malformed input was met (next() then keeps returning false).
  [[nodiscard]] bool ok() const noexcept { return ok_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  bool done_ = false;
  bool first_ = true;
};

/// The end (one past) of the JSON value starting at `text[pos]`, or npos if it does not
/// end inside `text`. Strings honour escapes; objects and arrays count brackets outside
/// strings; anything else runs up to the next delimiter.
std::size_t skip_value(std::string_view text, std::size_t pos);

/// Decodes the content of a JSON string (without quotes) into `out` (UTF-8): \n, \uXXXX,
/// surrogate pairs. False on a malformed escape.
bool unescape_json_string(std::string_view content, std::string& out);

/// The text of a string value (`raw` with its quotes): a view into `raw` when it holds no
/// escape, else decoded into `buf`. nullopt when `raw` is not a well-formed string.
std::optional<std::string_view> string_value(std::string_view raw, std::string& buf);

/// A canonical text for a JSON value, so that two texts of the same value compare equal:
/// no whitespace, object members sorted by key, strings decoded and re-escaped one way
/// (only '"', '\\' and control characters), numbers kept as written (so integers of any
/// size compare exactly), literals as is. nullopt when `value` is not one JSON value.
std::optional<std::string> canonical_json(std::string_view value);

/// The members of a reply that sd-bench looks at, as spans into the frame.
/// String members (`type`, `task_id`, `status`, `code`) are decoded: views into the
/// frame or into the Reply's own buffers; empty when absent. `result` and `error` are
/// raw JSON values; `error_code` is error.code of a RESULT with status "error".
struct Reply {
  std::string_view type;
  std::string_view task_id;
  std::string_view status;
  std::string_view code;     ///< top-level "code" (ERROR messages)
  std::string_view result;   ///< raw JSON; empty when absent
  std::string_view error;    ///< raw JSON; empty when absent
  std::string_view error_code;
  bool has_task_id = false;

  // Storage for strings that had escapes; reused from one reply to the next.
  std::string buf_type, buf_task_id, buf_status, buf_code, buf_error_code;
};

/// Fills `r` from one frame. False when the frame is not an object, or one of the
/// members above has the wrong kind of value (e.g. a numeric task_id).
bool scan_reply(std::string_view frame, Reply& r);

}  // namespace sd::bench
