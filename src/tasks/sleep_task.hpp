#pragma once
/// The `sleep` task type, for testing timeouts and failures.

#include <boost/json/object.hpp>

#include "tasks/task.hpp"

namespace sd::tasks {

/// `sleep`: {"ms": int 0..600000} -> {"slept_ms":ms}.
/// Blocks the calling thread without spinning, and wakes up early when ctx.stop
/// is requested or ctx.deadline comes first; it then returns `timeout`.
/// A missing, non-integer or out-of-range `ms` gives invalid_task_data.
TaskOutcome run_sleep(const boost::json::object& data, const TaskContext& ctx);

}  // namespace sd::tasks
