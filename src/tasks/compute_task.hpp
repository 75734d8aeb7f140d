#pragma once
/// The `compute` task type: CPU-bound work that nothing can skip.

#include <boost/json/object.hpp>

#include "tasks/task.hpp"

namespace sd::tasks {

/// `compute`: {"iterations": int 1..100000000, "seed": str (default "")}
///   -> {"digest":"<hex>","iterations":N}
/// where d(0) = the UTF-8 bytes of seed, d(k) = SHA-256(d(k-1)) as raw 32 bytes,
/// and digest = hex(d(N)). compute(3, "") = aa6ac2d4...c393d0.
///
/// Checks ctx.cancelled() every 4096 iterations (it reads the clock), and gives
/// up with `timeout` "task cancelled after K iterations" when it is set.
/// Bad fields give invalid_task_data.
TaskOutcome run_compute(const boost::json::object& data, const TaskContext& ctx);

}  // namespace sd::tasks
