#pragma once
/// The two pieces of linear-probing hash tables that DoneIdFilter and RecentResults share:
/// where a hash starts probing, and deletion without tombstones.
///
/// Thread-safety: pure functions on the caller's table.

#include <cstddef>
#include <cstdint>

namespace sd::server::open_addressing {

/// The slot a hash probes first, in a table of mask + 1 slots (a power of two).
/// Fibonacci hashing spreads the bits of a weak hash over the slots.
inline std::size_t home(std::uint64_t hash, std::size_t mask) noexcept {
  return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ULL) >> 20) & mask;
}

/// Empties slot `i` by backward-shift deletion: later entries of the same probe run move
/// up into the hole, so lookups never stop early at it. `slots` is a power-of-two sized
/// table whose empty slots equal `empty`; `home_of(slot)` is the home of a full slot.
template <class Slots, class Slot, class HomeOf>
void erase(Slots& slots, std::size_t i, const Slot& empty, HomeOf home_of) {
  const std::size_t mask = slots.size() - 1;
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask; !(slots[j] == empty); j = (j + 1) & mask) {
    const std::size_t h = home_of(slots[j]);
    // Move j into the hole if its home is not in (hole, j] (cyclically).
    const bool home_in_between = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (!home_in_between) {
      slots[hole] = slots[j];
      hole = j;
    }
  }
  slots[hole] = empty;
}

}  // namespace sd::server::open_addressing
