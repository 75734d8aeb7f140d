#pragma once
/// The `hash` task type.

#include <boost/json/object.hpp>

#include "tasks/task.hpp"

namespace sd::tasks {

/// `hash`: {"text": str} -> {"hash":"<SHA-256 of the UTF-8 text as 64 lowercase hex>"}.
/// A missing or non-string `text` gives invalid_task_data.
TaskOutcome run_hash(const boost::json::object& data, const TaskContext& ctx);

}  // namespace sd::tasks
