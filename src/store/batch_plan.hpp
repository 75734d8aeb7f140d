#pragma once
/// Internal to the SQL stores: a WriteBatch reduced to one effect per task_id, so that
/// a batch becomes a few set-oriented statements (multi-row in PostgreSQL) whose order
/// no longer matters, yet the outcome is exactly that of applying the batch's
/// operations one by one (MemoryStore does that; the conformance suite compares them).
///
/// Thread safety: pure functions.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/task_store.hpp"

namespace sd::store::detail {

// A plan points into the batch it was made from (no copies of task data or results):
// it is valid while that batch lives and is not changed.

/// A whole row to insert or replace.
struct PlannedRow {
  const StoredTask* task = nullptr;     ///< in the batch, or in BatchPlan::made
  std::uint32_t attempt = 0;            ///< the task's, or that of a later start in the batch
  TaskState state = TaskState::queued;
  const StoredResult* result = nullptr;  ///< set iff state == done
  std::size_t op_index = 0;              ///< the op that inserted it: seq = base + op_index
};

/// A state change for a row that may or may not exist; applies only if it is unfinished.
struct PlannedUpdate {
  std::string_view task_id;
  TaskState state = TaskState::queued;   ///< queued or running
  std::optional<std::uint32_t> attempt;  ///< nullopt: keep the stored attempt
};

/// Mark done with this result; if the row is missing, insert result_only_task(*result).
/// A start earlier in the batch rides along: `attempt` is set on the row first if it
/// is unfinished (a missing row gets result_only_task()'s attempt).
struct PlannedFinish {
  const StoredResult* result = nullptr;
  std::size_t op_index = 0;  ///< the op that would insert the row: seq = base + op_index
  std::optional<std::uint32_t> attempt;
};

/// seq: a store keeps a counter `base`; the row inserted by the batch's op i gets
/// seq = base + i, and base then grows by the batch's size. MemoryStore numbers rows the
/// same way, so even ties broken by seq agree across stores.
///
/// Applied in this order: deletes, upserts, updates, finishes. A task_id appears in at
/// most one of deletes / upserts / updates / finishes (a state change followed by a
/// finish is the finish: only the attempt it set survives, in PlannedFinish::attempt).
struct BatchPlan {
  std::vector<std::string_view> deletes;
  std::vector<PlannedRow> upserts;  ///< in the order they were added (seq order)
  std::vector<PlannedUpdate> updates;
  std::vector<PlannedFinish> finishes;
  std::deque<StoredTask> made;  ///< rows for results whose task the batch had deleted

  bool empty() const noexcept {
    return deletes.empty() && upserts.empty() && updates.empty() && finishes.empty();
  }
};

/// Throws InvalidBatchError if a string in the batch fails is_storable_text().
void validate_batch(const WriteBatch& batch);

/// Validates, then reduces the batch.
BatchPlan plan_batch(const WriteBatch& batch);

/// The TaskState a state column holds (0, 1, 2); throws StoreError for anything else.
TaskState state_from_column(std::int64_t value);

/// The row kept for a result whose task the store does not hold.
StoredTask result_only_task(const StoredResult& result);

}  // namespace sd::store::detail
