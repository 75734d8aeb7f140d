#include "server/done_id_filter.hpp"

#include <functional>

namespace sd::server {

std::uint64_t DoneIdFilter::fingerprint(std::string_view id) noexcept {
  return static_cast<std::uint64_t>(std::hash<std::string_view>{}(id));
}

void DoneIdFilter::add(std::string_view id, std::int64_t finished_at_ms) {
  const std::uint64_t fp = fingerprint(id);
  order_.push_back(Added{fp, finished_at_ms});
  ++counts_[fp];
}

bool DoneIdFilter::may_contain(std::string_view id) const { return counts_.contains(fingerprint(id)); }

void DoneIdFilter::expire_before(std::int64_t cutoff_ms) {
  while (!order_.empty() && order_.front().finished_at_ms < cutoff_ms) {
    auto it = counts_.find(order_.front().fingerprint);
    if (it != counts_.end() && --it->second == 0) counts_.erase(it);
    order_.pop_front();
  }
}

}  // namespace sd::server
