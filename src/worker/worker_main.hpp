#pragma once
/// The whole worker program as a function, so that a user's own worker with its own
/// task types is a registry and one call:
///
///     int main(int argc, char** argv) {
///       auto registry = sd::tasks::builtin_registry();
///       registry.add("word_count", my_word_count);
///       return sd::worker::run_worker_main(argc, argv, std::move(registry));
///     }

#include "tasks/task_registry.hpp"

namespace sd::worker {

/// Parses the standard worker options (--host, --port, --threads, --prefetch, --name,
/// --token, --log-level), connects, serves until SIGINT/SIGTERM (drain) and returns the
/// process exit status.
int run_worker_main(int argc, char** argv, tasks::TaskRegistry registry);

}  // namespace sd::worker
