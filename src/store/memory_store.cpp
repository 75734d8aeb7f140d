#include "store/memory_store.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>

#include "store/batch_plan.hpp"

namespace sd::store {

void MemoryStore::insert_row(StoredTask task, TaskState state, std::optional<StoredResult> result,
                             std::int64_t seq) {
  std::string id = task.task_id;
  rows_.insert_or_assign(std::move(id),
                         Row{TaskRecord{std::move(task), state}, std::move(result), seq});
}

void MemoryStore::write(const WriteBatch& batch) {
  try {
    detail::validate_batch(batch);
  } catch (const InvalidBatchError& e) {
    throw InvalidBatchError(std::string("memory store: write failed: ") + e.what());
  }
  // Row inserted by op i gets seq base + i, as in the SQL stores (batch_plan.hpp).
  const std::int64_t base = next_seq_;
  next_seq_ += static_cast<std::int64_t>(batch.size());
  const auto& ops = batch.ops();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::int64_t seq = base + static_cast<std::int64_t>(i);
    std::visit(
        [this, seq](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, WriteBatch::AddTask>) {
            insert_row(o.task, TaskState::queued, std::nullopt, seq);
          } else if constexpr (std::is_same_v<T, WriteBatch::Start>) {
            auto it = rows_.find(o.task_id);
            if (it != rows_.end() && it->second.record.state != TaskState::done) {
              it->second.record.state = TaskState::running;
              it->second.record.task.attempt = o.attempt;
            }
          } else if constexpr (std::is_same_v<T, WriteBatch::Requeue>) {
            auto it = rows_.find(o.task_id);
            if (it != rows_.end() && it->second.record.state != TaskState::done) {
              it->second.record.state = TaskState::queued;
            }
          } else if constexpr (std::is_same_v<T, WriteBatch::Finish>) {
            auto it = rows_.find(o.result.task_id);
            if (it == rows_.end()) {
              insert_row(detail::result_only_task(o.result), TaskState::done, o.result, seq);
            } else {
              it->second.record.state = TaskState::done;
              it->second.result = o.result;
            }
          } else if constexpr (std::is_same_v<T, WriteBatch::Drop>) {
            if (auto it = rows_.find(o.task_id); it != rows_.end()) rows_.erase(it);
          }
        },
        ops[i]);
  }
}

std::vector<TaskRecord> MemoryStore::load_unfinished() {
  std::vector<const Row*> unfinished;
  for (const auto& [id, row] : rows_) {
    if (row.record.state != TaskState::done) unfinished.push_back(&row);
  }
  std::sort(unfinished.begin(), unfinished.end(), [](const Row* a, const Row* b) {
    const StoredTask& x = a->record.task;
    const StoredTask& y = b->record.task;
    if (x.priority != y.priority) return x.priority > y.priority;
    if (x.created_at_ms != y.created_at_ms) return x.created_at_ms < y.created_at_ms;
    return a->seq < b->seq;
  });
  std::vector<TaskRecord> out;
  out.reserve(unfinished.size());
  for (const Row* row : unfinished) out.push_back(row->record);
  return out;
}

std::optional<StoredResult> MemoryStore::find_result(std::string_view task_id) {
  auto it = rows_.find(task_id);
  if (it == rows_.end()) return std::nullopt;
  return it->second.result;
}

std::optional<TaskRecord> MemoryStore::find_task(std::string_view task_id) {
  auto it = rows_.find(task_id);
  if (it == rows_.end()) return std::nullopt;
  return it->second.record;
}

std::int64_t MemoryStore::purge_results_before(std::int64_t finished_before_ms,
                                               std::int64_t limit) {
  if (limit <= 0) return 0;
  struct Candidate {
    std::int64_t finished_at_ms, seq;
    const std::string* id;
  };
  std::vector<Candidate> old;
  for (const auto& [id, row] : rows_) {
    if (row.result && row.result->finished_at_ms < finished_before_ms) {
      old.push_back({row.result->finished_at_ms, row.seq, &id});
    }
  }
  const auto n = std::min<std::size_t>(old.size(), static_cast<std::size_t>(limit));
  std::partial_sort(old.begin(), old.begin() + static_cast<std::ptrdiff_t>(n), old.end(),
                    [](const Candidate& a, const Candidate& b) {
                      return a.finished_at_ms != b.finished_at_ms
                                 ? a.finished_at_ms < b.finished_at_ms
                                 : a.seq < b.seq;
                    });
  std::vector<std::string> doomed;
  doomed.reserve(n);
  for (std::size_t i = 0; i < n; ++i) doomed.push_back(*old[i].id);
  for (const auto& id : doomed) rows_.erase(id);
  return static_cast<std::int64_t>(n);
}

void MemoryStore::for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) {
  std::vector<const Row*> done;
  for (const auto& [id, row] : rows_) {
    if (row.result) done.push_back(&row);
  }
  std::sort(done.begin(), done.end(), [](const Row* a, const Row* b) {
    return a->result->finished_at_ms != b->result->finished_at_ms
               ? a->result->finished_at_ms < b->result->finished_at_ms
               : a->seq < b->seq;
  });
  for (const Row* r : done) f(r->record.task.task_id, r->result->finished_at_ms);
}

StoreCounts MemoryStore::counts() {
  StoreCounts c;
  for (const auto& [id, row] : rows_) {
    switch (row.record.state) {
      case TaskState::queued:
        ++c.queued;
        break;
      case TaskState::running:
        ++c.running;
        break;
      case TaskState::done:
        ++c.done;
        break;
    }
  }
  return c;
}

std::string MemoryStore::describe() const { return "memory"; }

}  // namespace sd::store
