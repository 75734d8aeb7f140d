#include "tasks/task_registry.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sd::tasks {
namespace {

boost::json::object parse_object(std::string_view json) { return boost::json::parse(json).as_object(); }

TaskOutcome ok_result(const boost::json::object& /*data*/, const TaskContext& /*ctx*/) {
  return TaskOutcome::success(R"({"ok":true})");
}

TEST(TaskRegistry, UnknownTypeIsUnknownTaskTypeNamingIt) {
  const TaskRegistry registry = builtin_registry();
  const auto outcome = registry.run("nope", parse_object("{}"), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::unknown_task_type);
  EXPECT_EQ(outcome.message, "unknown task type 'nope'");
}

TEST(TaskRegistry, NamesAreCaseSensitive) {
  const TaskRegistry registry = builtin_registry();
  EXPECT_EQ(registry.run("HASH", parse_object(R"({"text":"a"})"), TaskContext{}).code,
            proto::ErrorCode::unknown_task_type);
}

TEST(TaskRegistry, FindReturnsNullForUnknownAndTheFunctionForKnown) {
  TaskRegistry registry;
  EXPECT_EQ(registry.find("echo"), nullptr);
  registry.add("echo", ok_result);
  const TaskFunction* fn = registry.find("echo");
  ASSERT_NE(fn, nullptr);
  EXPECT_EQ((*fn)(parse_object("{}"), TaskContext{}).result_json, R"({"ok":true})");
}

TEST(TaskRegistry, StdExceptionBecomesInternalWithItsMessage) {
  TaskRegistry registry;
  registry.add("boom", [](const boost::json::object&, const TaskContext&) -> TaskOutcome {
    throw std::runtime_error("disk on fire");
  });
  const auto outcome = registry.run("boom", parse_object("{}"), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::internal);
  EXPECT_EQ(outcome.message, "disk on fire");
}

TEST(TaskRegistry, NonStandardExceptionBecomesInternal) {
  TaskRegistry registry;
  registry.add("boom", [](const boost::json::object&, const TaskContext&) -> TaskOutcome {
    throw 42;
  });
  const auto outcome = registry.run("boom", parse_object("{}"), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::internal);
  EXPECT_FALSE(outcome.message.empty());
}

TEST(TaskRegistry, EmptyFunctionBecomesInternal) {
  TaskRegistry registry;
  registry.add("empty", TaskFunction{});
  const auto outcome = registry.run("empty", parse_object("{}"), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::internal);
}

TEST(TaskRegistry, TaskFailuresPassThroughUnchanged) {
  TaskRegistry registry;
  registry.add("fails", [](const boost::json::object&, const TaskContext&) {
    return TaskOutcome::failure(proto::ErrorCode::invalid_task_data, "'x' must be a string");
  });
  const auto outcome = registry.run("fails", parse_object("{}"), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, "'x' must be a string");
}

TEST(TaskRegistry, RunPassesDataAndContextThrough) {
  TaskRegistry registry;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
  registry.add("check", [deadline](const boost::json::object& fields, const TaskContext& ctx) {
    const bool same = ctx.deadline == deadline && fields.at("k").as_int64() == 7;
    return TaskOutcome::success(same ? "true" : "false");
  });
  TaskContext ctx;
  ctx.deadline = deadline;
  EXPECT_EQ(registry.run("check", parse_object(R"({"k":7})"), ctx).result_json, "true");
}

TEST(TaskRegistry, AddReplacesAnExistingType) {
  TaskRegistry registry;
  registry.add("t", [](const boost::json::object&, const TaskContext&) {
    return TaskOutcome::success("1");
  });
  registry.add("t", [](const boost::json::object&, const TaskContext&) {
    return TaskOutcome::success("2");
  });
  EXPECT_EQ(registry.run("t", parse_object("{}"), TaskContext{}).result_json, "2");
  EXPECT_EQ(registry.names(), std::vector<std::string>{"t"});
}

TEST(TaskRegistry, NamesAreSorted) {
  TaskRegistry registry;
  registry.add("zeta", ok_result);
  registry.add("alpha", ok_result);
  registry.add("mid", ok_result);
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"alpha", "mid", "zeta"}));
}

TEST(TaskRegistry, CostIsWhatAddSaidAndUnboundedOtherwise) {
  TaskRegistry registry;
  registry.add("cheap", ok_result, TaskCost::linear_in_input);
  registry.add("plain", ok_result);
  EXPECT_EQ(registry.cost("cheap"), TaskCost::linear_in_input);
  EXPECT_EQ(registry.cost("plain"), TaskCost::unbounded);
  EXPECT_EQ(registry.cost("unknown"), TaskCost::unbounded);
}

TEST(TaskRegistry, OnlyReverseAndHashAmongTheBuiltInsAreLinearInTheirInput) {
  const TaskRegistry r = builtin_registry();
  EXPECT_EQ(r.cost("reverse"), TaskCost::linear_in_input);
  EXPECT_EQ(r.cost("hash"), TaskCost::linear_in_input);
  EXPECT_EQ(r.cost("compute"), TaskCost::unbounded);
  EXPECT_EQ(r.cost("fibonacci"), TaskCost::unbounded);
  EXPECT_EQ(r.cost("sleep"), TaskCost::unbounded);
}

TEST(TaskRegistry, EmptyRegistryHasNoNames) { EXPECT_TRUE(TaskRegistry{}.names().empty()); }

TEST(TaskRegistry, BuiltinRegistryHoldsTheFiveBuiltInTypes) {
  EXPECT_EQ(builtin_registry().names(),
            (std::vector<std::string>{"compute", "fibonacci", "hash", "reverse", "sleep"}));
}

TEST(TaskRegistry, RegisterBuiltinTasksKeepsTypesAlreadyThere) {
  TaskRegistry registry;
  registry.add("custom", ok_result);
  register_builtin_tasks(registry);
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"compute", "custom", "fibonacci", "hash",
                                                        "reverse", "sleep"}));
}

TEST(TaskRegistry, EachBuiltInTypeRunsThroughTheRegistry) {
  const TaskRegistry registry = builtin_registry();
  const TaskContext ctx;
  EXPECT_EQ(registry.run("hash", parse_object(R"({"text":"Hola Mundo"})"), ctx).result_json,
            R"({"hash":"c3a4a2e49d91f2177113a9adfcb9ef9af9679dc4557a0a3a4602e1bd39a6f481"})");
  EXPECT_EQ(registry.run("fibonacci", parse_object(R"({"n":5})"), ctx).result_json,
            R"({"sequence":[0,1,1,2,3]})");
  EXPECT_EQ(registry.run("reverse", parse_object(R"({"text":"canción 😀"})"), ctx).result_json,
            R"({"reversed":"😀 nóicnac"})");
  EXPECT_EQ(registry.run("compute", parse_object(R"({"iterations":3})"), ctx).result_json,
            R"({"digest":"aa6ac2d4961882f42a345c7615f4133dde8e6d6e7c1b6b40ae4ff6ee52c393d0","iterations":3})");
  EXPECT_EQ(registry.run("sleep", parse_object(R"({"ms":0})"), ctx).result_json, R"({"slept_ms":0})");
}

TEST(TaskRegistry, ConcurrentRunsOnOneRegistryAgree) {
  // Filled once, then only read: pool threads share one registry.
  const TaskRegistry registry = builtin_registry();
  constexpr int kThreads = 4;
  std::vector<std::string> results(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&registry, &results, i] {
        results[static_cast<std::size_t>(i)] =
            registry.run("compute", parse_object(R"({"iterations":1000,"seed":"seed"})"), TaskContext{})
                .result_json;
      });
    }
  }
  for (const auto& result : results) {
    EXPECT_EQ(result,
              R"({"digest":"6bbcaffe615c09f40d02994c9d8c6a57999352513589256c243b3256db64a615","iterations":1000})");
  }
}

}  // namespace
}  // namespace sd::tasks
