#pragma once
/// Maps task_type names to their implementations.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tasks/task.hpp"

namespace sd::tasks {

/// Thread-safety: fill it before the pool starts; afterwards it is only read,
/// and concurrent reads are safe.
class TaskRegistry {
 public:
  /// Registers (or replaces) a task type.
  void add(std::string name, TaskFunction fn);

  /// The implementation of `name`, or nullptr when unknown.
  [[nodiscard]] const TaskFunction* find(std::string_view name) const;

  /// Registered names, sorted.
  [[nodiscard]] std::vector<std::string> names() const;

  /// Runs `name` on `data`, turning an unknown type into `unknown_task_type`
  /// and an escaping exception into `internal`.
  [[nodiscard]] TaskOutcome run(std::string_view name, const boost::json::object& data,
                                const TaskContext& ctx) const;

 private:
  std::map<std::string, TaskFunction, std::less<>> functions_;
};

/// Registers hash, fibonacci, reverse, compute and sleep.
void register_builtin_tasks(TaskRegistry& registry);

/// A registry holding the built-in tasks.
TaskRegistry builtin_registry();

}  // namespace sd::tasks
