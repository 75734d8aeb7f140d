#include "client/latency_stats.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace sd::client {
namespace {

std::vector<double> one_to(int n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 1.0);
  return v;
}

TEST(ClientLatencyStats, EmptySampleIsAllZero) {
  std::vector<double> none;
  const LatencySummary s = summarize(none);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p50, 0);
  EXPECT_EQ(s.p99, 0);
  EXPECT_EQ(s.max, 0);
  EXPECT_EQ(percentile_of_sorted(none, 50), 0);
}

TEST(ClientLatencyStats, SingleSampleIsEveryPercentile) {
  std::vector<double> one{7.5};
  const LatencySummary s = summarize(one);
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.min, 7.5);
  EXPECT_EQ(s.p50, 7.5);
  EXPECT_EQ(s.p90, 7.5);
  EXPECT_EQ(s.p99, 7.5);
  EXPECT_EQ(s.max, 7.5);
  EXPECT_EQ(s.mean, 7.5);
}

TEST(ClientLatencyStats, NearestRankOnOneToHundred) {
  const std::vector<double> v = one_to(100);
  EXPECT_EQ(percentile_of_sorted(v, 50), 50);
  EXPECT_EQ(percentile_of_sorted(v, 90), 90);
  EXPECT_EQ(percentile_of_sorted(v, 99), 99);
  EXPECT_EQ(percentile_of_sorted(v, 100), 100);
  EXPECT_EQ(percentile_of_sorted(v, 0), 1);
}

TEST(ClientLatencyStats, NearestRankRoundsUpOnSmallSamples) {
  const std::vector<double> v = one_to(10);
  EXPECT_EQ(percentile_of_sorted(v, 50), 5);   // rank ceil(5.0) = 5
  EXPECT_EQ(percentile_of_sorted(v, 99), 10);  // rank ceil(9.9) = 10: the max
  EXPECT_EQ(percentile_of_sorted(v, 1), 1);
}

TEST(ClientLatencyStats, OutOfRangePercentilesAreClamped) {
  const std::vector<double> v = one_to(4);
  EXPECT_EQ(percentile_of_sorted(v, -5), 1);
  EXPECT_EQ(percentile_of_sorted(v, 250), 4);
}

TEST(ClientLatencyStats, SummarizeSortsUnorderedInput) {
  std::vector<double> v{9, 1, 5, 3, 7, 2, 8, 4, 10, 6};
  const LatencySummary s = summarize(v);
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_EQ(s.p50, 5);
  EXPECT_EQ(s.p90, 9);
  EXPECT_EQ(s.p99, 10);
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
}

TEST(ClientLatencyStats, OneSlowOutlierShowsInP99NotP50) {
  std::vector<double> v(1000, 1.0);
  v[500] = 250.0;
  const LatencySummary s = summarize(v);
  EXPECT_EQ(s.p50, 1.0);
  EXPECT_EQ(s.p99, 1.0);  // 1 in 1000 is above the 99th percentile
  EXPECT_EQ(s.max, 250.0);
}

}  // namespace
}  // namespace sd::client
