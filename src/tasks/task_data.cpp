#include "tasks/task_data.hpp"

#include <boost/json/value.hpp>

#include <cassert>

namespace sd::tasks {
namespace {

std::string string_message(std::string_view key) {
  std::string message;
  message.append("'").append(key).append("' must be a string");
  return message;
}

std::string integer_message(std::string_view key, std::int64_t min, std::int64_t max) {
  std::string message;
  message.append("'").append(key).append("' must be an integer from ");
  message.append(std::to_string(min)).append(" to ").append(std::to_string(max));
  return message;
}

Field<std::string_view> read_string(const boost::json::value& value, std::string_view key) {
  if (const auto* text = value.if_string()) {
    return Field<std::string_view>::valid(std::string_view(text->data(), text->size()));
  }
  return Field<std::string_view>::invalid(string_message(key));
}

// Only the two integer kinds count: Boost.JSON parses 10.0 and 1e30 as doubles,
// and integers beyond uint64 as doubles too, so they all fall out here.
Field<std::int64_t> read_integer(const boost::json::value& value, std::string_view key,
                                 std::int64_t min, std::int64_t max) {
  if (const auto* i = value.if_int64()) {
    if (*i >= min && *i <= max) return Field<std::int64_t>::valid(*i);
  } else if (const auto* u = value.if_uint64()) {
    if (max >= 0 && *u <= static_cast<std::uint64_t>(max) &&
        (min <= 0 || *u >= static_cast<std::uint64_t>(min))) {
      return Field<std::int64_t>::valid(static_cast<std::int64_t>(*u));
    }
  }
  return Field<std::int64_t>::invalid(integer_message(key, min, max));
}

}  // namespace

Field<std::string_view> required_string(const boost::json::object& data, std::string_view key) {
  const auto* value = data.if_contains(key);
  if (value == nullptr) return Field<std::string_view>::invalid(string_message(key));
  return read_string(*value, key);
}

Field<std::string_view> optional_string(const boost::json::object& data, std::string_view key,
                                        std::string_view fallback) {
  const auto* value = data.if_contains(key);
  if (value == nullptr) return Field<std::string_view>::valid(fallback);
  return read_string(*value, key);
}

Field<std::int64_t> required_integer(const boost::json::object& data, std::string_view key,
                                     std::int64_t min, std::int64_t max) {
  assert(min <= max);
  const auto* value = data.if_contains(key);
  if (value == nullptr) return Field<std::int64_t>::invalid(integer_message(key, min, max));
  return read_integer(*value, key, min, max);
}

Field<std::int64_t> optional_integer(const boost::json::object& data, std::string_view key,
                                     std::int64_t min, std::int64_t max, std::int64_t fallback) {
  assert(min <= fallback && fallback <= max);
  const auto* value = data.if_contains(key);
  if (value == nullptr) return Field<std::int64_t>::valid(fallback);
  return read_integer(*value, key, min, max);
}

}  // namespace sd::tasks
