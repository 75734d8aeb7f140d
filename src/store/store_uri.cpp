#include "store/store_uri.hpp"

#include "store/task_store.hpp"

namespace sd::store {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string redact_uri(std::string_view uri) {
  std::string out(uri);
  // scheme://user:PASSWORD@host...: the userinfo ends at the last '@' before the path.
  if (const auto scheme_end = out.find("://"); scheme_end != std::string::npos) {
    const auto authority = scheme_end + 3;
    const auto path = out.find_first_of("/?#", authority);
    const auto authority_end = path == std::string::npos ? out.size() : path;
    const auto at = out.rfind('@', authority_end);
    if (at != std::string::npos && at > authority) {
      const auto colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // ...?password=SECRET&... (libpq's query parameter form).
  for (std::size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const bool at_param_start =
        pos > 0 && (out[pos - 1] == '?' || out[pos - 1] == '&' || out[pos - 1] == ' ');
    const auto value = pos + 9;
    if (!at_param_start) {
      pos = value;
      continue;
    }
    auto end = out.find_first_of("& ", value);
    if (end == std::string::npos) end = out.size();
    out.replace(value, end - value, "***");
    pos = value + 3;
  }
  return out;
}

StoreUri parse_store_uri(std::string_view uri) {
  if (uri == "memory") return {StoreUri::Kind::memory, {}};
  if (starts_with(uri, "sqlite:")) {
    auto path = uri.substr(7);
    if (path.empty()) {
      throw StoreError("store URI 'sqlite:' names no file; expected sqlite:PATH");
    }
    return {StoreUri::Kind::sqlite, std::string(path)};
  }
  if (starts_with(uri, "postgresql://") || starts_with(uri, "postgres://")) {
    return {StoreUri::Kind::postgres, std::string(uri)};
  }
  throw StoreError("unknown store URI '" + redact_uri(uri) +
                   "'; expected memory, sqlite:PATH or postgresql://user@host:port/db");
}

}  // namespace sd::store
