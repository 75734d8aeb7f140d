#include "client/latency_stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace sd::client {

double percentile_of_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Nearest rank: ceil(p/100 * n), 1-based; rank 0 (p == 0) means the minimum.
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

LatencySummary summarize(std::vector<double>& samples) {
  LatencySummary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.count = samples.size();
  s.min = samples.front();
  s.max = samples.back();
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  s.p50 = percentile_of_sorted(samples, 50);
  s.p90 = percentile_of_sorted(samples, 90);
  s.p99 = percentile_of_sorted(samples, 99);
  return s;
}

}  // namespace sd::client
