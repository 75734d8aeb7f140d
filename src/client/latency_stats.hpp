#pragma once
/// Summary statistics of a set of latencies: pure arithmetic, no clock, no I/O.

#include <cstddef>
#include <vector>

namespace sd::client {

/// Percentiles and extremes of a sample, in the unit of the input (the runner uses ms).
struct LatencySummary {
  std::size_t count = 0;
  double min = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

/// The `p`-th percentile (0 <= p <= 100) of an ascending `sorted` sample, by the
/// nearest-rank method: the smallest value with at least p% of the sample at or below it.
/// 0 for an empty sample; p outside [0, 100] is clamped.
double percentile_of_sorted(const std::vector<double>& sorted, double p);

/// Sorts `samples` in place and summarises them; all zero for an empty sample.
LatencySummary summarize(std::vector<double>& samples);

}  // namespace sd::client
