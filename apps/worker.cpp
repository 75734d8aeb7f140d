// worker: connects to the server and runs the built-in tasks on a pool of threads.
#include "tasks/task_registry.hpp"
#include "worker/worker_main.hpp"

int main(int argc, char** argv) { return sd::worker::run_worker_main(argc, argv, sd::tasks::builtin_registry()); }
