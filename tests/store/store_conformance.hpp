#pragma once
/// The behaviour every TaskStore must have, as one value-parameterised suite
/// (tests/unit/store_conformance_test.cpp). Each store's test file instantiates it with a
/// factory for its StoreEnv:
///   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values(StoreFactory{...}),
///                            factory_name);

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "../store/store_envs.hpp"

namespace sd::store {

// Readable failures: gtest prints these instead of raw bytes.
inline void PrintTo(const StoredTask& t, std::ostream* os) {
  *os << "{id=" << ::testing::PrintToString(t.task_id) << " type=" << t.task_type
      << " data=" << ::testing::PrintToString(t.task_data_json) << " prio=" << t.priority
      << " timeout=" << (t.timeout_ms ? std::to_string(*t.timeout_ms) : "none")
      << " retries=" << t.max_retries << " attempt=" << t.attempt << " async=" << t.async
      << " created=" << t.created_at_ms << "}";
}
inline void PrintTo(const StoredResult& r, std::ostream* os) {
  *os << "{id=" << ::testing::PrintToString(r.task_id)
      << " msg=" << ::testing::PrintToString(r.result_message_json)
      << " finished=" << r.finished_at_ms << "}";
}
inline void PrintTo(const TaskRecord& r, std::ostream* os) {
  PrintTo(r.task, os);
  *os << " " << to_string(r.state);
}
inline void PrintTo(const StoreCounts& c, std::ostream* os) {
  *os << "{queued=" << c.queued << " running=" << c.running << " done=" << c.done << "}";
}

}  // namespace sd::store

namespace sd::store::testing {

struct StoreFactory {
  std::string name;
  /// Empty when the store can be tested here; otherwise why not (the test is skipped).
  std::function<std::string()> unavailable;
  std::function<std::unique_ptr<StoreEnv>()> make_env;
};

inline void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

inline std::string factory_name(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    if (const std::string why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
    env_ = GetParam().make_env();
    store_ = env_->open();
  }
  void TearDown() override {
    store_.reset();
    env_.reset();
  }

  TaskStore& store() { return *store_; }
  StoreEnv& env() { return *env_; }
  /// Closes the store and opens it again on the same data, as a restarted server would.
  void reopen() {
    store_.reset();
    store_ = env_->open();
  }

 private:
  std::unique_ptr<StoreEnv> env_;
  std::unique_ptr<TaskStore> store_;
};

}  // namespace sd::store::testing
