#pragma once
/// Maps task_type names to their implementations.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tasks/task.hpp"

namespace sd::tasks {

/// How long a task type may run, as far as the worker needs to know.
enum class TaskCost {
  /// A few nanoseconds per byte of task_data at most, whatever the data says (reverse,
  /// hash): a small one takes microseconds.
  linear_in_input,
  /// Anything else: the data may ask for any amount of work (compute's iterations,
  /// fibonacci's n, sleep), or nobody said.
  unbounded,
};

/// Thread-safety: fill it before the pool starts; afterwards it is only read,
/// and concurrent reads are safe.
class TaskRegistry {
 public:
  /// Registers (or replaces) a task type.
  void add(std::string name, TaskFunction fn, TaskCost cost = TaskCost::unbounded);

  /// The implementation of `name`, or nullptr when unknown.
  [[nodiscard]] const TaskFunction* find(std::string_view name) const;

  /// What add() said of `name` (unbounded when unknown).
  [[nodiscard]] TaskCost cost(std::string_view name) const;

  /// Registered names, sorted.
  [[nodiscard]] std::vector<std::string> names() const;

  /// Runs `name` on `data`, turning an unknown type into `unknown_task_type`
  /// and an escaping exception into `internal`.
  [[nodiscard]] TaskOutcome run(std::string_view name, const boost::json::object& data,
                                const TaskContext& ctx) const;

 private:
  struct Entry {
    TaskFunction fn;
    TaskCost cost = TaskCost::unbounded;
  };
  std::map<std::string, Entry, std::less<>> functions_;
};

/// Registers hash, fibonacci, reverse, compute and sleep.
void register_builtin_tasks(TaskRegistry& registry);

/// A registry holding the built-in tasks.
TaskRegistry builtin_registry();

}  // namespace sd::tasks
