#pragma once
/// Which task ids the store may hold a finished task for, answered from memory.
///
/// A TASK that carries its own task_id must be checked against the finished tasks in
/// the store (idempotent resubmission). Almost every id is new, and asking the store
/// each time would put a read on every submission; this filter answers "certainly not
/// there" for those, and only a possible hit is read from the store.
///
/// It keeps a 64-bit fingerprint of each id with the time the task finished, and drops
/// those older than the result TTL (the store purges them too). may_contain() has no
/// false negatives for ids added and not expired; a false positive (a fingerprint
/// collision, an id finished twice) only costs one store read. About 40 bytes per id:
/// an open-addressing table of fingerprints and counts, and the expiry order.
///
/// Thread-safety: none; the server's event-loop thread owns it.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

namespace sd::server {

class DoneIdFilter {
 public:
  /// The task `id` finished at `finished_at_ms` (wall clock, ms since the epoch).
  void add(std::string_view id, std::int64_t finished_at_ms);
  [[nodiscard]] bool may_contain(std::string_view id) const;
  /// Forgets the ids that finished strictly before `cutoff_ms` (added in time order;
  /// an id added out of order is forgotten once those added before it are).
  void expire_before(std::int64_t cutoff_ms);
  /// Forgets the id added first (nothing when empty).
  void forget_oldest();
  [[nodiscard]] std::size_t size() const noexcept { return order_.size(); }

 private:
  struct Added {
    std::uint64_t fingerprint;
    std::int64_t finished_at_ms;
  };
  struct Slot {
    std::uint64_t fingerprint = 0;  ///< 0: empty
    std::uint32_t count = 0;        ///< times added and not expired
    friend bool operator==(const Slot&, const Slot&) = default;
  };
  static std::uint64_t fingerprint(std::string_view id) noexcept;
  [[nodiscard]] std::size_t find(std::uint64_t fp) const noexcept;  ///< its slot, or an empty one
  void grow();
  void erase_slot(std::size_t i) noexcept;

  std::deque<Added> order_;
  std::vector<Slot> slots_;  ///< linear probing; size a power of two, at most half full
  std::size_t used_ = 0;
};

}  // namespace sd::server
