#include "store/memory_store.hpp"

#include <gtest/gtest.h>

#include "../store/store_conformance.hpp"

namespace sd::store::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, StoreConformance,
                         ::testing::Values(StoreFactory{
                             "Memory", [] { return std::string(); },
                             [] { return std::make_unique<MemoryEnv>(); }}),
                         factory_name);

TEST(MemoryStore, DescribesItself) { EXPECT_EQ(MemoryStore().describe(), "memory"); }

TEST(MemoryStore, KeepsNothingAcrossInstances) {
  {
    MemoryStore first;
    WriteBatch b;
    StoredTask a;
    a.task_id = "a";
    b.add_task(a);
    first.write(b);
    EXPECT_EQ(first.counts(), (StoreCounts{1, 0, 0}));
  }
  EXPECT_EQ(MemoryStore().counts(), StoreCounts{});
}

}  // namespace
}  // namespace sd::store::testing
