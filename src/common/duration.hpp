#pragma once
/// Durations as people write them on command lines: "500ms", "2s", "5m", "24h", "1d".

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sd {

/// Parses "250ms", "2s", "1.5s", "5m", "24h", "7d"; a bare number means milliseconds.
/// nullopt for anything else (negative, empty, unknown unit).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The inverse, for messages: "500ms", "2s", "24h".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace sd
