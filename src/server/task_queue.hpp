#pragma once
/// The server's queue of tasks waiting for a worker: highest priority first, then FIFO.
///
/// Tasks are grouped by task_type so that a worker that runs only some types finds its
/// next task without scanning the others:
///
///     "hash"    -> { 5: [t7], 0: [t1, t4] }     priority -> FIFO of tasks
///     "reverse" -> { 0: [t2, t3] }
///
/// Across types, the next task for a worker is the one with the highest priority, then
/// the lowest sequence number (the order the server accepted them in).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sd::server {

struct TaskEntry;

/// Thread-safety: none; owned by the dispatcher.
class TaskQueue {
 public:
  /// Adds a task at the back of its priority level (a new task).
  void push_back(TaskEntry* task);
  /// Adds a task at the front of its priority level (a task whose worker was lost).
  void push_front(TaskEntry* task);

  /// Says whether a worker can take a task of this type now (empty: every type).
  using TypeFilter = std::function<bool(std::string_view type)>;

  /// The next task for a worker that runs `types` (empty span: any type), among the
  /// types `accept` lets through, removed from the queue; nullptr when there is none.
  TaskEntry* pop_for(std::span<const std::string> types, const TypeFilter& accept = {});
  /// The task pop_for(types, accept) would return, left in the queue.
  TaskEntry* peek_for(std::span<const std::string> types, const TypeFilter& accept = {});

  /// Removes every task for which `pred` is true; returns how many.
  std::size_t remove_if(const std::function<bool(const TaskEntry&)>& pred);

  /// Calls `fn` for each non-empty type with the tasks of that type.
  void for_each_type(const std::function<void(std::string_view type)>& fn) const;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

 private:
  using Levels = std::map<int, std::deque<TaskEntry*>, std::greater<>>;
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  Levels* best_levels(std::span<const std::string> types, const TypeFilter& accept);

  std::unordered_map<std::string, Levels, StringHash, std::equal_to<>> by_type_;
  std::size_t size_ = 0;
};

}  // namespace sd::server
