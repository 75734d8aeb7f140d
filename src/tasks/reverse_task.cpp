#include "tasks/reverse_task.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include <algorithm>
#include <string>
#include <string_view>

#include "tasks/task_data.hpp"

namespace sd::tasks {
namespace {

bool is_continuation(unsigned char byte) { return (byte & 0xC0U) == 0x80U; }

// Bytes in the UTF-8 sequence starting at `text[pos]`; 1 for a malformed one.
std::size_t sequence_length(std::string_view text, std::size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  std::size_t length = 1;
  if ((lead & 0xE0U) == 0xC0U) {
    length = 2;
  } else if ((lead & 0xF0U) == 0xE0U) {
    length = 3;
  } else if ((lead & 0xF8U) == 0xF0U) {
    length = 4;
  }
  if (length > text.size() - pos) return 1;
  for (std::size_t i = 1; i < length; ++i) {
    if (!is_continuation(static_cast<unsigned char>(text[pos + i]))) return 1;
  }
  return length;
}

std::string reverse_code_points(std::string_view utf8) {
  std::string reversed(utf8.size(), '\0');
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    const std::size_t length = sequence_length(utf8, pos);
    std::copy_n(utf8.data() + pos, length, reversed.data() + (utf8.size() - pos - length));
    pos += length;
  }
  return reversed;
}

}  // namespace

TaskOutcome run_reverse(const boost::json::object& data, const TaskContext& /*ctx*/) {
  const auto text = required_string(data, "text");
  if (!text) return text.failure();

  const std::string reversed = reverse_code_points(*text);
  std::string result = R"({"reversed":)";
  result += boost::json::serialize(boost::json::string_view(reversed));
  result += '}';
  return TaskOutcome::success(std::move(result));
}

}  // namespace sd::tasks
