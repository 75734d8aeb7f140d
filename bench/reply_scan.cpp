#include "reply_scan.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace sd::bench {

namespace {

constexpr std::size_t npos = std::string_view::npos;

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::size_t skip_ws(std::string_view t, std::size_t pos) {
  while (pos < t.size() && is_ws(t[pos])) ++pos;
  return pos;
}

/// Index of the quote closing the string whose content starts at `pos`, or npos.
/// Sets `escaped` if a backslash was seen.
std::size_t string_end(std::string_view t, std::size_t pos, bool& escaped) {
  escaped = false;
  for (;;) {
    // memchr-style search: most strings have no escape, so jump to the next quote.
    const std::size_t q = t.find('"', pos);
    if (q == npos) return npos;
    const void* bs = std::memchr(t.data() + pos, '\\', q - pos);
    if (bs == nullptr) return q;
    escaped = true;
    pos = static_cast<std::size_t>(static_cast<const char*>(bs) - t.data()) + 2;
    if (pos > t.size()) return npos;
  }
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool hex4(std::string_view s, std::size_t pos, std::uint32_t& v) {
  if (pos + 4 > s.size()) return false;
  v = 0;
  for (std::size_t i = pos; i < pos + 4; ++i) {
    const char c = s[i];
    std::uint32_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  return true;
}

/// The one way canonical_json writes a string.
void append_canonical_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

/// Recursive-descent canonicaliser; depth-limited so hostile input cannot blow the stack.
class Canonicaliser {
 public:
  explicit Canonicaliser(std::string_view text) : t_(text) {}

  bool value(std::string& out, int depth) {
    if (depth > kMaxDepth) return false;
    pos_ = skip_ws(t_, pos_);
    if (pos_ >= t_.size()) return false;
    switch (t_[pos_]) {
      case '{':
        return object(out, depth);
      case '[':
        return array(out, depth);
      case '"': {
        std::string s;
        if (!string(s)) return false;
        append_canonical_string(out, s);
        return true;
      }
      default:
        return scalar(out);
    }
  }

  bool at_end() {
    pos_ = skip_ws(t_, pos_);
    return pos_ == t_.size();
  }

 private:
  static constexpr int kMaxDepth = 128;

  bool string(std::string& s) {
    bool escaped = false;
    const std::size_t end = string_end(t_, pos_ + 1, escaped);
    if (end == npos) return false;
    const std::string_view content = t_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    if (!escaped) {
      s.assign(content);
      return true;
    }
    return unescape_json_string(content, s);
  }

  bool object(std::string& out, int depth) {
    ++pos_;  // '{'
    std::vector<std::pair<std::string, std::string>> members;
    pos_ = skip_ws(t_, pos_);
    if (pos_ < t_.size() && t_[pos_] == '}') {
      ++pos_;
      out.append("{}");
      return true;
    }
    for (;;) {
      pos_ = skip_ws(t_, pos_);
      if (pos_ >= t_.size() || t_[pos_] != '"') return false;
      std::pair<std::string, std::string> m;
      if (!string(m.first)) return false;
      pos_ = skip_ws(t_, pos_);
      if (pos_ >= t_.size() || t_[pos_] != ':') return false;
      ++pos_;
      if (!value(m.second, depth + 1)) return false;
      members.push_back(std::move(m));
      pos_ = skip_ws(t_, pos_);
      if (pos_ >= t_.size()) return false;
      if (t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (t_[pos_] != '}') return false;
      ++pos_;
      break;
    }
    // Member order carries no meaning in JSON; a stable sort keeps duplicates in order.
    std::stable_sort(members.begin(), members.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    out.push_back('{');
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i != 0) out.push_back(',');
      append_canonical_string(out, members[i].first);
      out.push_back(':');
      out.append(members[i].second);
    }
    out.push_back('}');
    return true;
  }

  bool array(std::string& out, int depth) {
    ++pos_;  // '['
    out.push_back('[');
    pos_ = skip_ws(t_, pos_);
    if (pos_ < t_.size() && t_[pos_] == ']') {
      ++pos_;
      out.push_back(']');
      return true;
    }
    for (bool first = true;; first = false) {
      if (!first) out.push_back(',');
      if (!value(out, depth + 1)) return false;
      pos_ = skip_ws(t_, pos_);
      if (pos_ >= t_.size()) return false;
      if (t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (t_[pos_] != ']') return false;
      ++pos_;
      out.push_back(']');
      return true;
    }
  }

  /// Numbers stay as written (exact for integers of any size); literals as is.
  bool scalar(std::string& out) {
    const std::size_t start = pos_;
    while (pos_ < t_.size()) {
      const char c = t_[pos_];
      if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' ||
          c == 'E') {
        ++pos_;
      } else {
        break;
      }
    }
    const std::string_view tok = t_.substr(start, pos_ - start);
    if (tok.empty()) return false;
    if (tok == "true" || tok == "false" || tok == "null") {
      out.append(tok);
      return true;
    }
    // A number: -?digits[.digits][(e|E)[+-]digits]; nothing else is accepted.
    std::size_t i = 0;
    auto digits = [&] {
      const std::size_t from = i;
      while (i < tok.size() && tok[i] >= '0' && tok[i] <= '9') ++i;
      return i > from;
    };
    if (tok[i] == '-') ++i;
    if (!digits()) return false;
    if (i < tok.size() && tok[i] == '.') {
      ++i;
      if (!digits()) return false;
    }
    if (i < tok.size() && (tok[i] == 'e' || tok[i] == 'E')) {
      ++i;
      if (i < tok.size() && (tok[i] == '+' || tok[i] == '-')) ++i;
      if (!digits()) return false;
    }
    if (i != tok.size()) return false;
    out.append(tok);
    return true;
  }

  std::string_view t_;
  std::size_t pos_ = 0;
};

}  // namespace

std::size_t skip_value(std::string_view t, std::size_t pos) {
  if (pos >= t.size()) return npos;
  const char c = t[pos];
  bool escaped = false;
  if (c == '"') {
    const std::size_t end = string_end(t, pos + 1, escaped);
    return end == npos ? npos : end + 1;
  }
  if (c == '{' || c == '[') {
    int depth = 0;
    for (std::size_t i = pos; i < t.size(); ++i) {
      const char d = t[i];
      if (d == '"') {
        i = string_end(t, i + 1, escaped);
        if (i == npos) return npos;
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return npos;
  }
  std::size_t i = pos;
  while (i < t.size() && !is_ws(t[i]) && t[i] != ',' && t[i] != '}' && t[i] != ']') ++i;
  return i == pos ? npos : i;
}

bool unescape_json_string(std::string_view s, std::string& out) {
  out.clear();
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= s.size()) return false;
    switch (s[i]) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '/': out.push_back('/'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!hex4(s, i + 1, cp)) return false;
        i += 4;
        // A high surrogate followed by \uDC00..\uDFFF is one code point; a lone
        // surrogate is kept as is (Python's json does the same).
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 2 < s.size() && s[i + 1] == '\\' &&
            s[i + 2] == 'u') {
          std::uint32_t lo = 0;
          if (hex4(s, i + 3, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        append_utf8(out, cp);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

std::optional<std::string_view> string_value(std::string_view raw, std::string& buf) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::nullopt;
  const std::string_view content = raw.substr(1, raw.size() - 2);
  if (content.find('\\') == npos) return content;
  if (!unescape_json_string(content, buf)) return std::nullopt;
  return std::string_view(buf);
}

std::optional<std::string> canonical_json(std::string_view value) {
  Canonicaliser c(value);
  std::string out;
  out.reserve(value.size());
  if (!c.value(out, 0) || !c.at_end()) return std::nullopt;
  return out;
}

MemberScanner::MemberScanner(std::string_view object) : text_(object) {
  pos_ = skip_ws(text_, 0);
  if (pos_ >= text_.size() || text_[pos_] != '{') {
    ok_ = false;
    return;
  }
  ++pos_;
}

bool MemberScanner::next(Member& m) {
  if (!ok_ || done_) return false;
  pos_ = skip_ws(text_, pos_);
  if (pos_ >= text_.size()) return ok_ = false;
  if (text_[pos_] == '}') {  // "{...,}" never gets here: after ',' a key must follow
    done_ = true;
    return false;
  }
  if (!first_) {
    if (text_[pos_] != ',') return ok_ = false;
    pos_ = skip_ws(text_, pos_ + 1);
  }
  first_ = false;
  if (pos_ >= text_.size() || text_[pos_] != '"') return ok_ = false;
  const std::size_t key_end = string_end(text_, pos_ + 1, m.key_escaped);
  if (key_end == npos) return ok_ = false;
  m.key = text_.substr(pos_ + 1, key_end - pos_ - 1);
  pos_ = skip_ws(text_, key_end + 1);
  if (pos_ >= text_.size() || text_[pos_] != ':') return ok_ = false;
  pos_ = skip_ws(text_, pos_ + 1);
  const std::size_t value_end = skip_value(text_, pos_);
  if (value_end == npos) return ok_ = false;
  m.value = text_.substr(pos_, value_end - pos_);
  pos_ = value_end;
  return true;
}

namespace {

/// Sets `field` to the decoded string `raw`; false if `raw` is not a string.
bool take_string(std::string_view raw, std::string_view& field, std::string& buf) {
  auto s = string_value(raw, buf);
  if (!s) return false;
  field = *s;
  return true;
}

}  // namespace

bool scan_reply(std::string_view frame, Reply& r) {
  r.type = r.task_id = r.status = r.code = r.result = r.error = r.error_code = {};
  r.has_task_id = false;
  MemberScanner scan(frame);
  Member m;
  std::string key_buf;
  while (scan.next(m)) {
    std::string_view key = m.key;
    if (m.key_escaped) {  // keys are never escaped in practice, but "\u0074ype" is "type"
      if (!unescape_json_string(m.key, key_buf)) return false;
      key = key_buf;
    }
    bool good = true;
    if (key == "type") {
      good = take_string(m.value, r.type, r.buf_type);
    } else if (key == "task_id") {
      good = take_string(m.value, r.task_id, r.buf_task_id);
      r.has_task_id = good;
    } else if (key == "status") {
      good = take_string(m.value, r.status, r.buf_status);
    } else if (key == "code") {
      good = take_string(m.value, r.code, r.buf_code);
    } else if (key == "result") {
      r.result = m.value;
    } else if (key == "error") {
      r.error = m.value;
    }
    if (!good) return false;
  }
  if (!scan.ok()) return false;
  if (!r.error.empty() && r.error.front() == '{') {
    MemberScanner es(r.error);
    while (es.next(m)) {
      std::string_view key = m.key;
      if (m.key_escaped) {
        if (!unescape_json_string(m.key, key_buf)) return false;
        key = key_buf;
      }
      if (key == "code" && !take_string(m.value, r.error_code, r.buf_error_code)) return false;
    }
    if (!es.ok()) return false;
  }
  return true;
}

}  // namespace sd::bench
