#include "tasks/sleep_task.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "tasks/task_data.hpp"

namespace sd::tasks {
namespace {

constexpr std::int64_t kMaxMs = 600'000;

}  // namespace

TaskOutcome run_sleep(const boost::json::object& data, const TaskContext& ctx) {
  const auto ms = required_integer(data, "ms", 0, kMaxMs);
  if (!ms) return ms.failure();

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto wake = start + std::chrono::milliseconds(*ms);
  if (wake > start) {
    // Nothing ever notifies this condition variable except the stop_token's
    // callback; wait_until loops over spurious wake-ups until the stop is
    // requested or the time comes.
    std::mutex mutex;
    std::condition_variable_any wakeup;
    std::unique_lock lock(mutex);
    wakeup.wait_until(lock, ctx.stop, std::min(wake, ctx.deadline), [] { return false; });
  }

  const auto now = Clock::now();
  if (now >= wake) return TaskOutcome::success(R"({"slept_ms":)" + std::to_string(*ms) + "}");
  const auto slept = std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count();
  const char* why = ctx.stop.stop_requested() ? "sleep cancelled" : "sleep reached its deadline";
  return TaskOutcome::failure(proto::ErrorCode::timeout,
                              std::string(why) + " after " + std::to_string(slept) + " ms");
}

}  // namespace sd::tasks
