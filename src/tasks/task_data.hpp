#pragma once
/// Reading and validating the fields of a task's task_data, so that every task
/// type rejects bad input alike and with the same wording.
///
/// The rules (PROTOCOL.md, "Built-in task types"):
///  - an integer field accepts only a JSON integer (int64 or uint64 kind) inside
///    its range; bools, floats (even 10.0), strings, null and everything else
///    are rejected, and so are out-of-range values (negative, 1e30, 2^63);
///  - a string field accepts only a JSON string;
///  - an optional field that is absent takes its default; one that is present
///    must be valid, so `"n": null` is rejected, not defaulted;
///  - unknown extra fields are ignored.
/// Messages name the field and what it accepts, e.g.
/// "'n' must be an integer from 0 to 10000" or "'text' must be a string".

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proto/error_code.hpp"
#include "tasks/task.hpp"

namespace sd::tasks {

/// A field's value, or the message saying why the field is invalid.
/// Invariant: exactly one of `value` and `error` is set.
template <typename T>
struct Field {
  std::optional<T> value;
  std::string error;

  static Field valid(T v) { return Field{std::move(v), {}}; }
  static Field invalid(std::string message) { return Field{std::nullopt, std::move(message)}; }

  [[nodiscard]] explicit operator bool() const noexcept { return value.has_value(); }
  [[nodiscard]] const T& operator*() const { return *value; }

  /// The invalid_task_data outcome a task returns for this field.
  [[nodiscard]] TaskOutcome failure() const {
    return TaskOutcome::failure(proto::ErrorCode::invalid_task_data, error);
  }
};

/// The string field `key`. The view points into `data`, so it lives as long as `data`.
[[nodiscard]] Field<std::string_view> required_string(const boost::json::object& data,
                                                      std::string_view key);

/// The string field `key`, or `fallback` when the field is absent.
[[nodiscard]] Field<std::string_view> optional_string(const boost::json::object& data,
                                                      std::string_view key,
                                                      std::string_view fallback);

/// The integer field `key`, which must lie in [min, max].
/// Precondition: min <= max.
[[nodiscard]] Field<std::int64_t> required_integer(const boost::json::object& data,
                                                   std::string_view key, std::int64_t min,
                                                   std::int64_t max);

/// The integer field `key` in [min, max], or `fallback` when the field is absent.
/// Precondition: min <= fallback <= max.
[[nodiscard]] Field<std::int64_t> optional_integer(const boost::json::object& data,
                                                   std::string_view key, std::int64_t min,
                                                   std::int64_t max, std::int64_t fallback);

}  // namespace sd::tasks
