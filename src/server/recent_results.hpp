#pragma once
/// The latest finished results of a server without a durable store (`--store memory`),
/// kept for GET_RESULT and for idempotent resubmission of a finished task_id.
///
/// A ring of `capacity` entries: a new result takes the next slot and, once the ring is
/// full, overwrites the oldest. An open-addressing table of id hashes finds an entry by
/// id; each of its slots keeps 32 bits of the id's hash beside the ring index, so that
/// probing and deleting compare and move slots without reading the (cold) ring entries.
/// An entry keeps its four texts (id, type, data, RESULT line) end to end in one string,
/// which keeps its capacity when the ring comes round: a steady stream of results
/// allocates nothing (a node-based map paid four allocations and frees per result, and
/// a cache miss per bucket step), and the entry a new result overwrites, the oldest and
/// so the coldest, is one small block and one text block. put() also asks the CPU to
/// fetch the entry after it, the next to be overwritten, so that its memory is on its
/// way while the event loop does other work.
///
///     ring_:  [ e5 | e6 | e2 | e3 | e4 ]     head_ = 2 (oldest), used_ = 5
///                        ^oldest   newest^ wraps to index 1
///
/// Thread-safety: none; the server's event-loop thread owns it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sd::server {

class RecentResults {
 public:
  struct alignas(64) Entry {  // one cache line
    std::string text;  ///< task_id, task_type, task_data and line, end to end
    std::uint32_t id_len = 0;
    std::uint32_t type_len = 0;
    std::uint32_t data_len = 0;
    bool live = false;  ///< false: erased, or never used
    std::int64_t finished_at_ms = 0;
    std::uint64_t hash = 0;

    [[nodiscard]] std::string_view task_id() const noexcept { return {text.data(), id_len}; }
    [[nodiscard]] std::string_view task_type() const noexcept { return {text.data() + id_len, type_len}; }
    [[nodiscard]] std::string_view task_data() const noexcept {
      return {text.data() + id_len + type_len, data_len};
    }
    /// The RESULT message, without '\n'.
    [[nodiscard]] std::string_view line() const noexcept {
      const std::size_t at = std::size_t{id_len} + type_len + data_len;
      return {text.data() + at, text.size() - at};
    }
  };

  /// `capacity` 0 keeps nothing.
  explicit RecentResults(std::size_t capacity);

  /// The entry for `id`, or nullptr. Valid until the next put(), erase() or expiry.
  [[nodiscard]] const Entry* find(std::string_view id) const;
  /// Records the result of `id`. An id already held is updated where it is (its place
  /// in the eviction order does not change); a new one evicts the oldest when full. The
  /// views must not point into this object's entries.
  void put(std::string_view id, std::string_view task_type, std::string_view task_data, std::string_view line,
           std::int64_t finished_at_ms);
  /// Forgets `id` (nothing if it is not held).
  void erase(std::string_view id);
  /// Forgets the oldest entries while they finished strictly before `cutoff_ms`. Entries
  /// are expired in the order they were added; one updated later stays until those
  /// added before it have gone.
  void expire_before(std::int64_t cutoff_ms);
  [[nodiscard]] std::size_t size() const noexcept { return live_; }

 private:
  /// A slot of index_: `entry` is the ring index + 1 (0: empty), `tag` the high half of
  /// the id's hash (which also picks the slot's home).
  struct Slot {
    std::uint32_t entry;
    std::uint32_t tag;
    friend bool operator==(const Slot&, const Slot&) = default;
  };
  static constexpr Slot kEmpty{0, 0};
  static std::uint32_t tag_of(std::uint64_t hash) noexcept { return static_cast<std::uint32_t>(hash >> 32); }

  [[nodiscard]] std::size_t home(std::uint32_t tag) const noexcept;
  /// The index_ slot holding `id`, or the empty slot where the probe for it stopped.
  [[nodiscard]] std::size_t probe(std::string_view id, std::uint64_t hash) const noexcept;
  void unindex(std::size_t slot) noexcept;
  /// Drops the oldest ring slot (unindexing it if live).
  void pop_oldest() noexcept;
  /// Starts fetching what the put() after next overwrites: the ring entry after the
  /// oldest, its text and its index slot.
  void prefetch_next_victim() const noexcept;

  std::size_t capacity_;
  std::vector<Entry> ring_;  ///< grows to capacity_ as results come, then wraps
  std::size_t head_ = 0;  ///< the oldest slot in use
  std::size_t used_ = 0;  ///< ring slots in use, erased ones included
  std::size_t live_ = 0;
  std::vector<Slot> index_;  ///< linear probing; a power of two, at most half full
};

}  // namespace sd::server
