// A worker with a task type of its own: "word_count" counts the words of a text.
// Run it like the stock worker:  build/bin/example_worker --port 9000
// and send it work:             {"type":"TASK","task_type":"word_count","task_data":{"text":"hola mundo"}}
#include <sstream>
#include <string>

#include "tasks/task_registry.hpp"
#include "worker/worker_main.hpp"

using namespace sd::tasks;

TaskOutcome word_count(const boost::json::object& data, const TaskContext&) {
  const auto* text = data.if_contains("text");
  if (text == nullptr || !text->is_string()) return TaskOutcome::failure(sd::proto::ErrorCode::invalid_task_data, "'text' must be a string");
  std::istringstream in{std::string(text->get_string())};
  std::size_t words = 0;
  for (std::string w; in >> w;) ++words;
  return TaskOutcome::success("{\"words\":" + std::to_string(words) + "}");
}

int main(int argc, char** argv) {
  TaskRegistry registry = builtin_registry();  // keep hash, fibonacci, ... too
  registry.add("word_count", word_count);
  return sd::worker::run_worker_main(argc, argv, std::move(registry));
}
