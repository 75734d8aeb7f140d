#include "server/done_id_filter.hpp"

#include <functional>

#include "server/open_addressing.hpp"

namespace sd::server {

std::uint64_t DoneIdFilter::fingerprint(std::string_view id) noexcept {
  const auto h = static_cast<std::uint64_t>(std::hash<std::string_view>{}(id));
  return h == 0 ? 1 : h;  // 0 marks an empty slot
}

std::size_t DoneIdFilter::find(std::uint64_t fp) const noexcept {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = open_addressing::home(fp, mask);
  while (slots_[i].fingerprint != 0 && slots_[i].fingerprint != fp) i = (i + 1) & mask;
  return i;
}

void DoneIdFilter::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
  for (const Slot& s : old) {
    if (s.fingerprint != 0) slots_[find(s.fingerprint)] = s;
  }
}

void DoneIdFilter::add(std::string_view id, std::int64_t finished_at_ms) {
  if ((used_ + 1) * 2 > slots_.size()) grow();
  const std::uint64_t fp = fingerprint(id);
  order_.push_back(Added{fp, finished_at_ms});
  Slot& s = slots_[find(fp)];
  if (s.fingerprint == 0) {
    s.fingerprint = fp;
    ++used_;
  }
  ++s.count;
}

bool DoneIdFilter::may_contain(std::string_view id) const {
  return !slots_.empty() && slots_[find(fingerprint(id))].fingerprint != 0;
}

void DoneIdFilter::erase_slot(std::size_t i) noexcept {
  const std::size_t mask = slots_.size() - 1;
  open_addressing::erase(slots_, i, Slot{}, [mask](const Slot& s) { return open_addressing::home(s.fingerprint, mask); });
  --used_;
}

void DoneIdFilter::expire_before(std::int64_t cutoff_ms) {
  while (!order_.empty() && order_.front().finished_at_ms < cutoff_ms) forget_oldest();
}

void DoneIdFilter::forget_oldest() {
  if (order_.empty()) return;
  const std::size_t i = find(order_.front().fingerprint);
  if (slots_[i].fingerprint != 0 && --slots_[i].count == 0) erase_slot(i);
  order_.pop_front();
}

}  // namespace sd::server
