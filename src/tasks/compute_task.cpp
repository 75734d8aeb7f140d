#include "tasks/compute_task.hpp"

#include <cstdint>
#include <string>

#include "tasks/sha256.hpp"
#include "tasks/task_data.hpp"

namespace sd::tasks {
namespace {

constexpr std::int64_t kMaxIterations = 100'000'000;
// A power of two so the check is a mask; 4096 iterations take about 0.3 ms.
constexpr std::int64_t kCancelCheckMask = 4096 - 1;

TaskOutcome cancelled_after(std::int64_t done) {
  return TaskOutcome::failure(proto::ErrorCode::timeout,
                              "task cancelled after " + std::to_string(done) + " iterations");
}

}  // namespace

TaskOutcome run_compute(const boost::json::object& data, const TaskContext& ctx) {
  const auto iterations = required_integer(data, "iterations", 1, kMaxIterations);
  if (!iterations) return iterations.failure();
  const auto seed = optional_string(data, "seed", "");
  if (!seed) return seed.failure();

  if (ctx.cancelled()) return cancelled_after(0);
  Sha256 sha;
  Sha256Digest digest = sha.digest(*seed);  // d(1)
  for (std::int64_t k = 1; k < *iterations; ++k) {
    if ((k & kCancelCheckMask) == 0 && ctx.cancelled()) return cancelled_after(k);
    digest = sha.digest(digest);  // d(k + 1)
  }

  std::string result = R"({"digest":")";
  result += to_hex(digest);
  result += R"(","iterations":)";
  result += std::to_string(*iterations);
  result += '}';
  return TaskOutcome::success(std::move(result));
}

}  // namespace sd::tasks
