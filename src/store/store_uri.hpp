#pragma once
/// Parsing and redaction of store URIs (the --store option). Pure: no I/O.
///
/// Thread safety: the functions are pure and may be called from any thread.

#include <string>
#include <string_view>

namespace sd::store {

/// A store URI taken apart.
struct StoreUri {
  enum class Kind { memory, sqlite, postgres };
  Kind kind = Kind::memory;
  /// memory: empty. sqlite: the path (or "file:" URI) after "sqlite:".
  /// postgres: the whole URI, as libpq takes it.
  std::string target;
};

/// Parses "memory", "sqlite:PATH", "postgresql://..." or "postgres://...".
/// Throws StoreError naming the accepted forms for anything else (an empty sqlite path
/// included). The URI in the message is redacted.
StoreUri parse_store_uri(std::string_view uri);

/// The URI with any password replaced by "***": the one in "scheme://user:PASSWORD@host"
/// and any "password=" query parameter. Safe to log. Other text is returned unchanged.
std::string redact_uri(std::string_view uri);

}  // namespace sd::store
