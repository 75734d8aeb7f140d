#pragma once
/// A TaskStore in process memory: `--store memory`, and the reference the SQL stores are
/// tested against. Nothing survives the process; otherwise the same semantics.
///
/// It applies a batch's operations one by one, in order: the definition of what a batch
/// means (task_store.hpp, WriteBatch). write() cannot fail after validation, so a batch
/// is all or nothing here too.
///
/// Thread safety: one thread at a time (like every TaskStore).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "store/task_store.hpp"

namespace sd::store {

class MemoryStore final : public TaskStore {
 public:
  MemoryStore() = default;

  void write(const WriteBatch& batch) override;
  std::vector<TaskRecord> load_unfinished() override;
  std::optional<StoredResult> find_result(std::string_view task_id) override;
  std::optional<TaskRecord> find_task(std::string_view task_id) override;
  std::int64_t purge_results_before(std::int64_t finished_before_ms, std::int64_t limit) override;
  void for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) override;
  StoreCounts counts() override;
  std::string describe() const override;

 private:
  struct Row {
    TaskRecord record;
    std::optional<StoredResult> result;  // set iff record.state == done
    std::int64_t seq = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  void insert_row(StoredTask task, TaskState state, std::optional<StoredResult> result,
                  std::int64_t seq);

  std::unordered_map<std::string, Row, Hash, std::equal_to<>> rows_;
  std::int64_t next_seq_ = 1;
};

}  // namespace sd::store
