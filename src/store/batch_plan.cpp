#include "store/batch_plan.hpp"

#include <algorithm>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>

namespace sd::store::detail {
namespace {

void check_storable(std::string_view what, std::string_view id, std::string_view value) {
  if (is_storable_text(value)) return;
  std::string message = "batch rejected: the " + std::string(what);
  // Name the task when its id is printable; never echo the bad bytes themselves.
  if (what != "task_id" && is_storable_text(id) && id.size() <= 200) {
    message += " of task \"" + std::string(id) + "\"";
  }
  throw InvalidBatchError(message + " is not valid UTF-8 or contains a NUL byte");
}

// What one task_id's operations in the batch amount to so far.
struct Effect {
  enum class Kind { none, deleted, row, delta };
  Kind kind = Kind::none;
  std::size_t first_seen = 0;  // op index; orders deletes/updates/finishes deterministically
  std::size_t finish_pos = 0;  // op index of the first finish of a delta
  PlannedRow row;
  std::optional<TaskState> state;
  std::optional<std::uint32_t> attempt;
  const StoredResult* result = nullptr;

  void set_row(PlannedRow r) {
    kind = Kind::row;
    row = r;
    state.reset();
    attempt.reset();
    result = nullptr;
  }
};

}  // namespace

void validate_batch(const WriteBatch& batch) {
  for (const WriteBatch::Op& op : batch.ops()) {
    std::visit(
        [](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, WriteBatch::AddTask>) {
            check_storable("task_id", o.task.task_id, o.task.task_id);
            check_storable("task_type", o.task.task_id, o.task.task_type);
            check_storable("task_data", o.task.task_id, o.task.task_data_json);
          } else if constexpr (std::is_same_v<T, WriteBatch::Finish>) {
            check_storable("task_id", o.result.task_id, o.result.task_id);
            check_storable("result", o.result.task_id, o.result.result_message_json);
          } else {
            check_storable("task_id", o.task_id, o.task_id);
          }
        },
        op);
  }
}

TaskState state_from_column(std::int64_t value) {
  switch (value) {
    case 0:
      return TaskState::queued;
    case 1:
      return TaskState::running;
    case 2:
      return TaskState::done;
    default:
      throw StoreError("corrupt row: state " + std::to_string(value));
  }
}

StoredTask result_only_task(const StoredResult& result) {
  StoredTask task;
  task.task_id = result.task_id;
  task.created_at_ms = result.finished_at_ms;
  return task;
}

BatchPlan plan_batch(const WriteBatch& batch) {
  validate_batch(batch);
  BatchPlan plan;
  const auto& ops = batch.ops();
  std::unordered_map<std::string_view, Effect> effects;
  effects.reserve(ops.size());
  auto effect_of = [&](std::string_view id, std::size_t i) -> Effect& {
    auto [it, inserted] = effects.try_emplace(id);
    if (inserted) it->second.first_seen = i;
    return it->second;
  };

  for (std::size_t i = 0; i < ops.size(); ++i) {
    std::visit(
        [&](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          using Kind = Effect::Kind;
          if constexpr (std::is_same_v<T, WriteBatch::AddTask>) {
            effect_of(o.task.task_id, i).set_row(PlannedRow{&o.task, o.task.attempt, TaskState::queued, nullptr, i});
          } else if constexpr (std::is_same_v<T, WriteBatch::Start> ||
                               std::is_same_v<T, WriteBatch::Requeue>) {
            constexpr bool is_start = std::is_same_v<T, WriteBatch::Start>;
            Effect& e = effect_of(o.task_id, i);
            if (e.kind == Kind::row) {
              if (e.row.state != TaskState::done) {
                e.row.state = is_start ? TaskState::running : TaskState::queued;
                if constexpr (is_start) e.row.attempt = o.attempt;
              }
            } else if (e.kind != Kind::deleted && !e.result) {
              e.kind = Kind::delta;
              e.state = is_start ? TaskState::running : TaskState::queued;
              if constexpr (is_start) e.attempt = o.attempt;
            }
          } else if constexpr (std::is_same_v<T, WriteBatch::Finish>) {
            Effect& e = effect_of(o.result.task_id, i);
            if (e.kind == Kind::row) {
              e.row.state = TaskState::done;
              e.row.result = &o.result;
            } else if (e.kind == Kind::deleted) {
              const StoredTask& made = plan.made.emplace_back(result_only_task(o.result));
              e.set_row(PlannedRow{&made, made.attempt, TaskState::done, &o.result, i});
            } else {
              e.kind = Kind::delta;
              if (!e.result) e.finish_pos = i;
              e.result = &o.result;
            }
          } else if constexpr (std::is_same_v<T, WriteBatch::Drop>) {
            Effect& e = effect_of(o.task_id, i);
            e.kind = Kind::deleted;
            e.state.reset();
            e.attempt.reset();
            e.result = nullptr;
          }
        },
        ops[i]);
  }

  // Deterministic output: by first appearance, upserts by the op that made the row.
  std::vector<std::pair<std::string_view, Effect*>> ordered;
  ordered.reserve(effects.size());
  for (auto& [id, e] : effects) ordered.emplace_back(id, &e);
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.second->first_seen < b.second->first_seen;
  });

  std::vector<PlannedRow*> rows;
  for (auto& [id, e] : ordered) {
    switch (e->kind) {
      case Effect::Kind::none:
        break;
      case Effect::Kind::deleted:
        plan.deletes.emplace_back(id);
        break;
      case Effect::Kind::row:
        rows.push_back(&e->row);
        break;
      case Effect::Kind::delta:
        // The finish overrides the state; a start's attempt is all that remains of it.
        if (e->result) {
          plan.finishes.push_back(PlannedFinish{e->result, e->finish_pos, e->attempt});
        } else if (e->state) {
          plan.updates.push_back(PlannedUpdate{id, *e->state, e->attempt});
        }
        break;
    }
  }
  std::sort(rows.begin(), rows.end(),
            [](const PlannedRow* a, const PlannedRow* b) { return a->op_index < b->op_index; });
  plan.upserts.reserve(rows.size());
  for (PlannedRow* row : rows) plan.upserts.push_back(*row);
  return plan;
}

}  // namespace sd::store::detail
