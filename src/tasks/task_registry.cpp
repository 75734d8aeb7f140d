#include "tasks/task_registry.hpp"

#include <exception>
#include <utility>

#include "tasks/compute_task.hpp"
#include "tasks/fibonacci_task.hpp"
#include "tasks/hash_task.hpp"
#include "tasks/reverse_task.hpp"
#include "tasks/sleep_task.hpp"

namespace sd::tasks {

void TaskRegistry::add(std::string name, TaskFunction fn, TaskCost cost) {
  functions_.insert_or_assign(std::move(name), Entry{std::move(fn), cost});
}

const TaskFunction* TaskRegistry::find(std::string_view name) const {
  const auto it = functions_.find(name);
  return it == functions_.end() ? nullptr : &it->second.fn;
}

TaskCost TaskRegistry::cost(std::string_view name) const {
  const auto it = functions_.find(name);
  return it == functions_.end() ? TaskCost::unbounded : it->second.cost;
}

std::vector<std::string> TaskRegistry::names() const {
  // std::map keeps its keys sorted.
  std::vector<std::string> result;
  result.reserve(functions_.size());
  for (const auto& entry : functions_) result.push_back(entry.first);
  return result;
}

TaskOutcome TaskRegistry::run(std::string_view name, const boost::json::object& data,
                              const TaskContext& ctx) const {
  const TaskFunction* fn = find(name);
  if (fn == nullptr) {
    std::string message = "unknown task type '";
    message.append(name).append("'");
    return TaskOutcome::failure(proto::ErrorCode::unknown_task_type, std::move(message));
  }
  try {
    return (*fn)(data, ctx);
  } catch (const std::exception& e) {
    return TaskOutcome::failure(proto::ErrorCode::internal, e.what());
  } catch (...) {
    return TaskOutcome::failure(proto::ErrorCode::internal, "task threw a non-standard exception");
  }
}

void register_builtin_tasks(TaskRegistry& registry) {
  registry.add("compute", run_compute);
  registry.add("fibonacci", run_fibonacci);
  registry.add("hash", run_hash, TaskCost::linear_in_input);
  registry.add("reverse", run_reverse, TaskCost::linear_in_input);
  registry.add("sleep", run_sleep);
}

TaskRegistry builtin_registry() {
  TaskRegistry registry;
  register_builtin_tasks(registry);
  return registry;
}

}  // namespace sd::tasks
