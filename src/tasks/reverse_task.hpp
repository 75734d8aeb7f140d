#pragma once
/// The `reverse` task type.

#include <boost/json/object.hpp>

#include "tasks/task.hpp"

namespace sd::tasks {

/// `reverse`: {"text": str} -> {"reversed": the text reversed by Unicode code point}
/// (Python's text[::-1]), so "canción 😀" becomes "😀 nóicnac".
/// Each UTF-8 sequence keeps its byte order. The JSON parser has validated the
/// text already; should a string built in code be invalid UTF-8 anyway, each byte
/// that does not start a well-formed sequence moves as a unit of its own, so the
/// result always holds the same bytes as the input.
/// A missing or non-string `text` gives invalid_task_data.
TaskOutcome run_reverse(const boost::json::object& data, const TaskContext& ctx);

}  // namespace sd::tasks
