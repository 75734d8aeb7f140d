#pragma once
/// The protocol's rule for integer fields, shared by both decoders (messages.cpp and
/// fast_decode.cpp): a JSON integer (int64, or uint64 above int64's range) within
/// [lo, hi]. Floats, booleans and strings are not integers.

#include <cstdint>
#include <optional>
#include <variant>

namespace sd::proto {

/// `n` if it lies in [lo, hi]; otherwise nullopt, with `bad` set.
inline std::optional<std::int64_t> integer_in_range(std::variant<std::int64_t, std::uint64_t> n, std::int64_t lo,
                                                    std::int64_t hi, bool& bad) {
  if (const auto* u = std::get_if<std::uint64_t>(&n); u != nullptr && *u > static_cast<std::uint64_t>(hi)) {
    bad = true;
    return std::nullopt;
  }
  const auto value = std::visit([](auto x) { return static_cast<std::int64_t>(x); }, n);
  if (value < lo || value > hi) {
    bad = true;
    return std::nullopt;
  }
  return value;
}

}  // namespace sd::proto
