#include "proto/json_scan.hpp"

#include <cstddef>

namespace sd::proto {
namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

void skip_space(std::string_view s, std::size_t& i) {
  while (i < s.size() && is_space(s[i])) ++i;
}

/// At an opening quote: moves past the closing one. False if unterminated.
bool skip_string(std::string_view s, std::size_t& i) {
  ++i;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\\') {
      i += 2;
      continue;
    }
    ++i;
    if (c == '"') return true;
  }
  return false;
}

/// Moves past one value of any kind. False if the input ends first.
bool skip_value(std::string_view s, std::size_t& i) {
  if (i >= s.size()) return false;
  const char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (i < s.size()) {
      const char d = s[i];
      if (d == '"') {
        if (!skip_string(s, i)) return false;
        continue;
      }
      if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) {
          ++i;
          return true;
        }
      }
      ++i;
    }
    return false;
  }
  // number, true, false, null: up to the next delimiter. Input that ends first may have
  // cut it short ("12" of "123"): that is the input ending first too.
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_space(s[i])) ++i;
  return i < s.size();
}

}  // namespace

std::optional<std::string_view> raw_member(std::string_view json, std::string_view key) {
  std::size_t i = 0;
  skip_space(json, i);
  if (i >= json.size() || json[i] != '{') return std::nullopt;
  ++i;
  skip_space(json, i);
  if (i < json.size() && json[i] == '}') return std::nullopt;  // {}
  std::optional<std::string_view> found;
  for (;;) {
    skip_space(json, i);
    if (i >= json.size() || json[i] != '"') return std::nullopt;
    const std::size_t key_start = i + 1;
    if (!skip_string(json, i)) return std::nullopt;
    const std::string_view k = json.substr(key_start, i - 1 - key_start);
    // A key written with an escape may decode to `key`: which value a parser keeps is
    // then unknown here (and a second `key` too: a parser keeps the last, not this one).
    if (k.find('\\') != std::string_view::npos) return std::nullopt;
    skip_space(json, i);
    if (i >= json.size() || json[i] != ':') return std::nullopt;
    ++i;
    skip_space(json, i);
    const std::size_t value_start = i;
    if (!skip_value(json, i)) return std::nullopt;
    if (k == key) {
      if (found) return std::nullopt;
      found = json.substr(value_start, i - value_start);
    }
    skip_space(json, i);
    if (i < json.size() && json[i] == '}') return found;
    if (i >= json.size() || json[i] != ',') return std::nullopt;
    ++i;
  }
}

}  // namespace sd::proto
