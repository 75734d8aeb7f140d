/// What sd-bench pays to check one reply (reply_scan.hpp), so its own cost per task can be
/// compared with the server's. Run: build/bin/sd-micro --benchmark_filter=ReplyScan
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "reply_scan.hpp"

namespace {

constexpr std::string_view kReply =
    R"({"type":"RESULT","task_id":"5f1c09ab2e31.m.123456","status":"success","result":{"reversed":"odnum aloh"},"worker_id":"worker_1","processing_time":0.000012})";
constexpr std::string_view kExpected = R"({"reversed":"odnum aloh"})";

/// The usual path: scan the members, compare "result" byte for byte.
void BM_ReplyScan_Result(benchmark::State& state) {
  sd::bench::Reply r;
  for (auto _ : state) {
    if (!sd::bench::scan_reply(kReply, r) || r.result != kExpected) {
      state.SkipWithError("scan failed");
      break;
    }
    benchmark::DoNotOptimize(r.task_id.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReplyScan_Result);

/// The slow path, taken once per differently formatted result text.
void BM_ReplyScan_Canonical(benchmark::State& state) {
  const std::string spaced = R"({"reversed": "odnum aloh"})";
  for (auto _ : state) {
    auto c = sd::bench::canonical_json(spaced);
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReplyScan_Canonical);

}  // namespace
