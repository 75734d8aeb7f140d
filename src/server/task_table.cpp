#include "server/task_table.hpp"

#include <cassert>
#include <functional>
#include <memory>
#include <new>

#include "server/open_addressing.hpp"

namespace sd::server {

namespace {
std::uint32_t tag_of(std::string_view id) noexcept {
  return static_cast<std::uint32_t>(std::hash<std::string_view>{}(id) >> 32);
}
}  // namespace

TaskTable::TaskTable() : index_(kInitialSlots, kEmpty) {}

TaskTable::~TaskTable() {
  for (const Slot& s : index_) delete s.entry;
}

std::size_t TaskTable::home(std::uint32_t tag) const noexcept { return open_addressing::home(tag, index_.size() - 1); }

std::size_t TaskTable::probe(std::string_view id, std::uint32_t tag) const noexcept {
  const std::size_t mask = index_.size() - 1;
  for (std::size_t i = home(tag);; i = (i + 1) & mask) {
    const Slot& s = index_[i];
    if (s.entry == nullptr || (s.tag == tag && s.entry->msg.task_id == id)) return i;
  }
}

TaskEntry* TaskTable::find(std::string_view id) noexcept { return index_[probe(id, tag_of(id))].entry; }

const TaskEntry* TaskTable::find(std::string_view id) const noexcept { return index_[probe(id, tag_of(id))].entry; }

std::pair<TaskEntry*, bool> TaskTable::try_emplace(std::string_view id) {
  const std::uint32_t tag = tag_of(id);
  std::size_t i = probe(id, tag);
  if (index_[i].entry != nullptr) return {index_[i].entry, false};
  if ((size_ + 1) * 2 > index_.size()) {
    resize(index_.size() * 2);
    i = probe(id, tag);
  }
  auto entry = std::make_unique<TaskEntry>();
  entry->msg.task_id.assign(id);
  index_[i] = Slot{entry.release(), tag};
  ++size_;
  return {index_[i].entry, true};
}

void TaskTable::erase(TaskEntry& entry) noexcept {
  const std::size_t mask = index_.size() - 1;
  // Its probe run holds it; the bound only keeps a caller's mistake (an entry not held)
  // from looping for ever.
  std::size_t i = home(tag_of(entry.msg.task_id));
  for (std::size_t steps = 0; index_[i].entry != &entry; ++steps) {
    if (steps == index_.size()) {
      assert(false && "TaskTable::erase of an entry it does not hold");
      return;
    }
    i = (i + 1) & mask;
  }
  open_addressing::erase(index_, i, kEmpty, [this](const Slot& s) { return home(s.tag); });
  --size_;
  delete &entry;
  if (index_.size() > kInitialSlots && size_ * 8 < index_.size()) {
    try {
      resize(index_.size() / 2);
    } catch (const std::bad_alloc&) {
      // Keep the larger index: it works as well.
    }
  }
}

void TaskTable::resize(std::size_t slots) {
  std::vector<Slot> old(slots, kEmpty);
  old.swap(index_);
  const std::size_t mask = index_.size() - 1;
  for (const Slot& s : old) {
    if (s.entry == nullptr) continue;
    std::size_t i = home(s.tag);
    while (index_[i].entry != nullptr) i = (i + 1) & mask;
    index_[i] = s;
  }
}

}  // namespace sd::server
