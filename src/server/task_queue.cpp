#include "server/task_queue.hpp"

#include <algorithm>

#include "server/task_entry.hpp"

namespace sd::server {

void TaskQueue::push_back(TaskEntry* task) {
  by_type_[task->msg.task_type][task->msg.priority].push_back(task);
  ++size_;
}

void TaskQueue::push_front(TaskEntry* task) {
  by_type_[task->msg.task_type][task->msg.priority].push_front(task);
  ++size_;
}

TaskQueue::Levels* TaskQueue::best_levels(std::span<const std::string> types, const TypeFilter& accept) {
  Levels* best = nullptr;
  auto consider = [&best, &accept](std::string_view type, Levels& levels) {
    if (levels.empty() || (accept && !accept(type))) return;
    if (best == nullptr) {
      best = &levels;
      return;
    }
    const auto& [prio, fifo] = *levels.begin();
    const auto& [best_prio, best_fifo] = *best->begin();
    if (prio > best_prio || (prio == best_prio && fifo.front()->seq < best_fifo.front()->seq)) best = &levels;
  };
  if (types.empty()) {
    for (auto& [type, levels] : by_type_) consider(type, levels);
  } else {
    for (const std::string& type : types) {
      auto it = by_type_.find(type);
      if (it != by_type_.end()) consider(type, it->second);
    }
  }
  return best;
}

TaskEntry* TaskQueue::pop_for(std::span<const std::string> types, const TypeFilter& accept) {
  if (size_ == 0) return nullptr;
  Levels* levels = best_levels(types, accept);
  if (levels == nullptr) return nullptr;
  auto top = levels->begin();
  TaskEntry* task = top->second.front();
  top->second.pop_front();
  if (top->second.empty()) levels->erase(top);
  --size_;
  return task;
}

TaskEntry* TaskQueue::peek_for(std::span<const std::string> types, const TypeFilter& accept) {
  if (size_ == 0) return nullptr;
  Levels* levels = best_levels(types, accept);
  return levels == nullptr ? nullptr : levels->begin()->second.front();
}

std::size_t TaskQueue::remove_if(const std::function<bool(const TaskEntry&)>& pred) {
  std::size_t removed = 0;
  for (auto& [type, levels] : by_type_) {
    for (auto it = levels.begin(); it != levels.end();) {
      removed += std::erase_if(it->second, [&pred](const TaskEntry* t) { return pred(*t); });
      it = it->second.empty() ? levels.erase(it) : std::next(it);
    }
  }
  size_ -= removed;
  return removed;
}

void TaskQueue::for_each_type(const std::function<void(std::string_view type)>& fn) const {
  for (const auto& [type, levels] : by_type_) {
    if (!levels.empty()) fn(type);
  }
}

}  // namespace sd::server
