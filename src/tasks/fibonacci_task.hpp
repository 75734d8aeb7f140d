#pragma once
/// The `fibonacci` task type.

#include <boost/json/object.hpp>

#include "tasks/task.hpp"

namespace sd::tasks {

/// `fibonacci`: {"n": int 0..10000} (default 10) -> {"sequence":[0,1,1,2,3,...]},
/// the first n Fibonacci numbers as exact JSON integers of any size, written as
/// Python's json.dumps writes them (n=0 gives {"sequence":[]}).
/// n=10000 yields about 10 MB of JSON, built straight into the result string.
/// A non-integer or out-of-range `n` gives invalid_task_data.
TaskOutcome run_fibonacci(const boost::json::object& data, const TaskContext& ctx);

}  // namespace sd::tasks
