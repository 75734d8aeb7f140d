#include "server/recent_results.hpp"

#include <bit>
#include <functional>

#include "server/open_addressing.hpp"

namespace sd::server {

namespace {
std::uint64_t hash_id(std::string_view id) noexcept { return std::hash<std::string_view>{}(id); }
}  // namespace

RecentResults::RecentResults(std::size_t capacity) : capacity_(capacity) {
  if (capacity > 0) index_.assign(std::bit_ceil(capacity * 2), kEmpty);
}

std::size_t RecentResults::home(std::uint32_t tag) const noexcept {
  return open_addressing::home(tag, index_.size() - 1);
}

std::size_t RecentResults::probe(std::string_view id, std::uint64_t hash) const noexcept {
  const std::size_t mask = index_.size() - 1;
  const std::uint32_t tag = tag_of(hash);
  for (std::size_t i = home(tag);; i = (i + 1) & mask) {
    const Slot s = index_[i];
    if (s == kEmpty) return i;
    if (s.tag == tag && ring_[s.entry - 1].task_id() == id) return i;
  }
}

const RecentResults::Entry* RecentResults::find(std::string_view id) const {
  if (capacity_ == 0) return nullptr;
  const Slot s = index_[probe(id, hash_id(id))];
  return s == kEmpty ? nullptr : &ring_[s.entry - 1];
}

void RecentResults::put(std::string_view id, std::string_view task_type, std::string_view task_data,
                        std::string_view line, std::int64_t finished_at_ms) {
  if (capacity_ == 0) return;
  const std::uint64_t hash = hash_id(id);
  std::size_t slot = probe(id, hash);
  Entry* e = nullptr;
  if (index_[slot] != kEmpty) {
    e = &ring_[index_[slot].entry - 1];
    e->text.resize(e->id_len);  // the same id stays
  } else {
    if (used_ == capacity_) {
      pop_oldest();
      slot = probe(id, hash);  // the table may have shifted
    }
    // Slots are taken in order, so the ring grows one slot at a time until it is full.
    const std::size_t at = (head_ + used_) % capacity_;
    if (at == ring_.size()) ring_.emplace_back();
    ++used_;
    ++live_;
    index_[slot] = Slot{static_cast<std::uint32_t>(at + 1), tag_of(hash)};
    e = &ring_[at];
    e->hash = hash;
    e->live = true;
    e->text.assign(id);
    e->id_len = static_cast<std::uint32_t>(id.size());
  }
  e->text.append(task_type).append(task_data).append(line);
  e->type_len = static_cast<std::uint32_t>(task_type.size());
  e->data_len = static_cast<std::uint32_t>(task_data.size());
  e->finished_at_ms = finished_at_ms;
  if (used_ == capacity_) prefetch_next_victim();
}

void RecentResults::prefetch_next_victim() const noexcept {
  const Entry& next = ring_[(head_ + 1) % capacity_];
  __builtin_prefetch(&next);
  __builtin_prefetch(next.text.data());
  if (next.live) __builtin_prefetch(&index_[home(tag_of(next.hash))]);
}

void RecentResults::unindex(std::size_t slot) noexcept {
  open_addressing::erase(index_, slot, kEmpty, [this](const Slot& s) { return home(s.tag); });
}

void RecentResults::erase(std::string_view id) {
  if (capacity_ == 0) return;
  const std::size_t slot = probe(id, hash_id(id));
  if (index_[slot] == kEmpty) return;
  ring_[index_[slot].entry - 1].live = false;
  unindex(slot);
  --live_;
}

void RecentResults::pop_oldest() noexcept {
  Entry& e = ring_[head_];
  if (e.live) {
    unindex(probe(e.task_id(), e.hash));
    e.live = false;
    --live_;
  }
  head_ = (head_ + 1) % capacity_;
  --used_;
}

void RecentResults::expire_before(std::int64_t cutoff_ms) {
  while (used_ > 0 && (!ring_[head_].live || ring_[head_].finished_at_ms < cutoff_ms)) pop_oldest();
}

}  // namespace sd::server
