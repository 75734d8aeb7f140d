// Group-commit benchmark of the stores: N new tasks written in batches of B, then their
// N results in batches of B, each batch one write() (one transaction). Not a test.
//
//   store_bench [--tasks N] [--batch B] URI...
//   store_bench memory sqlite:/tmp/bench.db "$SD_TEST_PG_URI"
//
// Each URI should name an empty store (a sqlite file that does not exist yet, a fresh
// database or schema); the benchmark leaves its rows there.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "store/task_store.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void report(const char* phase, int n, int batch, double ms) {
  const int batches = (n + batch - 1) / batch;
  std::printf("  %-8s %6d rows in %4d batches: %9.1f ms total, %7.3f ms/batch, %9.0f rows/s\n",
              phase, n, batches, ms, ms / batches, n / (ms / 1000.0));
}

int run(const std::string& uri, int n, int batch) {
  const auto open_start = Clock::now();
  auto store = sd::store::open_store(uri);
  std::printf("%s\n  open     %.1f ms\n", store->describe().c_str(), ms_since(open_start));

  const std::string data = R"({"text":"the quick brown fox jumps over the lazy dog"})";
  const auto add_start = Clock::now();
  for (int i = 0; i < n; i += batch) {
    sd::store::WriteBatch b;
    for (int k = i; k < std::min(n, i + batch); ++k) {
      sd::store::StoredTask t;
      t.task_id = "bench-" + std::to_string(k);
      t.task_type = "hash";
      t.task_data_json = data;
      t.created_at_ms = 1'700'000'000'000 + k;
      b.add_task(std::move(t));
      b.start("bench-" + std::to_string(k), 1);  // dispatched in the same round, as a busy server does
    }
    store->write(b);
  }
  report("tasks", n, batch, ms_since(add_start));

  const auto result_start = Clock::now();
  for (int i = 0; i < n; i += batch) {
    sd::store::WriteBatch b;
    for (int k = i; k < std::min(n, i + batch); ++k) {
      const std::string id = "bench-" + std::to_string(k);
      b.finish(
          {id,
           R"({"type":"RESULT","task_id":")" + id +
               R"(","status":"success","result":{"hash":"05c6e08f1d9fdafa03147fcb8f82f124c76d2f70e3d989dc8aadb5e7d7450bec"},"worker_id":"worker_1","processing_time":0.000123})",
           1'700'000'100'000 + k});
    }
    store->write(b);
  }
  report("results", n, batch, ms_since(result_start));

  const auto c = store->counts();
  if (c.done != n || c.queued != 0 || c.running != 0) {
    std::fprintf(stderr, "unexpected counts: queued=%lld running=%lld done=%lld\n",
                 static_cast<long long>(c.queued), static_cast<long long>(c.running),
                 static_cast<long long>(c.done));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 20'000, batch = 256;
  std::vector<std::string> uris;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
      batch = std::atoi(argv[++i]);
    } else {
      uris.emplace_back(argv[i]);
    }
  }
  if (uris.empty() || n <= 0 || batch <= 0) {
    std::fprintf(stderr, "usage: %s [--tasks N] [--batch B] URI...\n", argv[0]);
    return 2;
  }
  int rc = 0;
  for (const auto& uri : uris) {
    try {
      rc |= run(uri, n, batch);
    } catch (const sd::store::StoreError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      rc = 1;
    }
  }
  return rc;
}
