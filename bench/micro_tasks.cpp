/// Micro-benchmarks of the built-in task types, called through the registry as a worker
/// calls them (std::function dispatch and exception guard included).
/// Run: build/bin/sd-micro --benchmark_filter=Task
#include <benchmark/benchmark.h>

#include <boost/json.hpp>

#include <string>
#include <string_view>

#include "tasks/task_registry.hpp"

namespace {

using sd::tasks::TaskContext;

void run_task(benchmark::State& state, std::string_view type, std::string_view task_data) {
  const auto registry = sd::tasks::builtin_registry();
  const boost::json::object data = boost::json::parse(task_data).as_object();
  const TaskContext ctx;
  std::size_t result_bytes = 0;
  for (auto _ : state) {
    auto outcome = registry.run(type, data, ctx);
    if (!outcome.ok) {
      state.SkipWithError(outcome.message.c_str());
      break;
    }
    result_bytes = outcome.result_json.size();
    benchmark::DoNotOptimize(outcome.result_json.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["result_bytes"] = static_cast<double>(result_bytes);
}

void BM_Task_Hash(benchmark::State& s) { run_task(s, "hash", R"({"text":"hola mundo"})"); }
void BM_Task_Reverse(benchmark::State& s) { run_task(s, "reverse", R"({"text":"hola mundo"})"); }
void BM_Task_Fibonacci10(benchmark::State& s) { run_task(s, "fibonacci", R"({"n":10})"); }
void BM_Task_Fibonacci1000(benchmark::State& s) { run_task(s, "fibonacci", R"({"n":1000})"); }
void BM_Task_Compute1000(benchmark::State& s) { run_task(s, "compute", R"({"iterations":1000})"); }
void BM_Task_Compute200000(benchmark::State& s) { run_task(s, "compute", R"({"iterations":200000})"); }

BENCHMARK(BM_Task_Hash);
BENCHMARK(BM_Task_Reverse);
BENCHMARK(BM_Task_Fibonacci10);
BENCHMARK(BM_Task_Fibonacci1000);
BENCHMARK(BM_Task_Compute1000);
// One W3 task of the peer benchmark: its cost bounds the CPU-bound rate (cores / cost).
BENCHMARK(BM_Task_Compute200000)->Unit(benchmark::kMillisecond);

}  // namespace
