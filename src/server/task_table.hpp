#pragma once
/// The server's pending tasks, found by task_id.
///
/// Each TaskEntry lives in a heap block of its own, so its address never changes: the
/// queue and the workers' in-flight lists point at it. An open-addressing index finds it:
/// each slot holds the entry's address and 32 bits of its id's hash, so a probe reads an
/// entry only when those bits match, and the key is the entry's own msg.task_id (no
/// second copy). With tens of thousands of tasks pending, a lookup costs a slot and the
/// entry, where std::unordered_map read a bucket, the node before the chain, the node
/// and its key's heap block: the lookups were a quarter of the server's time at 51,200
/// tasks in flight.
///
///     index_: [ -- | e7,tag | e2,tag | -- | e9,tag | ... ]   1/8 to 1/2 full
///                      |        '--> TaskEntry (msg.task_id "b.1.2", ...)
///                      '--> TaskEntry (msg.task_id "a.3.7", ...)
///
/// Thread-safety: none; the dispatcher owns it, on the server's event-loop thread.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "server/task_entry.hpp"

namespace sd::server {

class TaskTable {
 public:
  TaskTable();
  ~TaskTable();
  TaskTable(const TaskTable&) = delete;
  TaskTable& operator=(const TaskTable&) = delete;

  /// The entry whose msg.task_id is `id`, or nullptr.
  [[nodiscard]] TaskEntry* find(std::string_view id) noexcept;
  [[nodiscard]] const TaskEntry* find(std::string_view id) const noexcept;
  [[nodiscard]] bool contains(std::string_view id) const noexcept { return find(id) != nullptr; }
  /// The entry for `id` and true if it is new (a default TaskEntry whose msg.task_id is
  /// `id`), or the one already there and false.
  std::pair<TaskEntry*, bool> try_emplace(std::string_view id);
  /// Removes and destroys `entry`, which must be in the table (one that is not is left
  /// alone after a search of the whole index, and asserts in a debug build).
  void erase(TaskEntry& entry) noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Slots in the index: it doubles when half full and halves when under an eighth full
  /// (never below 64), so a burst of pending tasks does not leave a large index behind.
  [[nodiscard]] std::size_t slots() const noexcept { return index_.size(); }

  /// Calls `f(TaskEntry&)` for every entry, in no particular order. `f` must not add or
  /// remove entries.
  template <class F>
  void for_each(F&& f) {
    for (const Slot& s : index_) {
      if (s.entry != nullptr) f(*s.entry);
    }
  }

 private:
  struct Slot {
    TaskEntry* entry;  ///< nullptr: empty
    std::uint32_t tag;  ///< the high half of the id's hash, which also picks the home slot
    friend bool operator==(const Slot&, const Slot&) = default;
  };
  static constexpr Slot kEmpty{nullptr, 0};
  static constexpr std::size_t kInitialSlots = 64;

  [[nodiscard]] std::size_t home(std::uint32_t tag) const noexcept;
  /// The slot holding `id`, or the empty slot where the probe for it stopped.
  [[nodiscard]] std::size_t probe(std::string_view id, std::uint32_t tag) const noexcept;
  /// Rebuilds the index with `slots` slots, a power of two (entries stay where they are).
  void resize(std::size_t slots);

  std::vector<Slot> index_;  ///< linear probing; a power of two
  std::size_t size_ = 0;
};

}  // namespace sd::server
