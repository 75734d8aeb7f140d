#include "store/task_store.hpp"

#include <cstdint>
#include <cstring>

#include "store/memory_store.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"
#include "store/store_uri.hpp"

namespace sd::store {

std::string_view to_string(TaskState state) noexcept {
  switch (state) {
    case TaskState::queued:
      return "queued";
    case TaskState::running:
      return "running";
    case TaskState::done:
      return "done";
  }
  return "unknown";
}

bool is_storable_text(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Eight ASCII bytes at a time, none of them NUL (the common case: JSON text).
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      constexpr std::uint64_t kLow = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
      if (((w | ((w - kLow) & ~w)) & kHigh) != 0) break;  // a byte >= 0x80, or a zero byte
      p += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {  // ASCII, NUL excluded
      if (c == 0) return false;
      ++p;
      continue;
    }
    // Lead byte: sequence length and the allowed range of the second byte (RFC 3629),
    // which rules out overlong forms, surrogates (ED A0..BF) and code points > U+10FFFF.
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (end - p < len) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i < len; ++i) {
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    }
    p += len;
  }
  return true;
}

std::unique_ptr<TaskStore> open_store(std::string_view uri) {
  StoreUri parsed = parse_store_uri(uri);
  switch (parsed.kind) {
    case StoreUri::Kind::memory:
      return std::make_unique<MemoryStore>();
    case StoreUri::Kind::sqlite:
      return std::make_unique<SqliteStore>(std::move(parsed.target));
    case StoreUri::Kind::postgres:
      return std::make_unique<PostgresStore>(std::move(parsed.target));
  }
  throw StoreError("unknown store kind");
}

}  // namespace sd::store
