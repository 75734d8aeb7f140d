#include "tasks/hash_task.hpp"

#include <string>

#include "tasks/sha256.hpp"
#include "tasks/task_data.hpp"

namespace sd::tasks {

TaskOutcome run_hash(const boost::json::object& data, const TaskContext& /*ctx*/) {
  const auto text = required_string(data, "text");
  if (!text) return text.failure();

  Sha256 sha;
  // Hex digits need no JSON escaping.
  std::string result = R"({"hash":")";
  result += to_hex(sha.digest(*text));
  result += R"("})";
  return TaskOutcome::success(std::move(result));
}

}  // namespace sd::tasks
