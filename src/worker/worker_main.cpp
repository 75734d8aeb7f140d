#include "worker/worker_main.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#include "common/logging.hpp"
#include "worker/worker_runtime.hpp"

namespace sd::worker {

int run_worker_main(int argc, char** argv, tasks::TaskRegistry registry) {
  CLI::App app{"worker: runs the server's tasks on a pool of threads"};
  WorkerOptions opt;
  std::string log_level = "info";
  int prefetch = -1;
  app.add_option("--host", opt.host, "Server host")->capture_default_str();
  app.add_option("--port", opt.port, "Server port")->capture_default_str();
  app.add_option("--threads", opt.threads, "Threads in the pool")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--prefetch", prefetch, "Tasks held beyond --threads (default: the server adapts it to the task durations)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--name", opt.name, "A name shown in the server's STATS");
  app.add_option("--token", opt.token, "Shared secret of the server (env SD_TOKEN)")->envname("SD_TOKEN");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (prefetch >= 0) opt.prefetch = prefetch;
  if (!init_logging(log_level, "WORKER")) {
    std::cerr << "error: unknown --log-level '" << log_level << "'\n";
    return 2;
  }

  boost::asio::io_context io(1);
  int exit_code = 0;
  WorkerRuntime runtime(io, opt, registry);
  runtime.on_fatal([&](const std::string& why) {
    spdlog::error("{}", why);
    exit_code = 1;
    io.stop();
  });
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    runtime.drain([&io] {
      spdlog::info("Worker detenido");
      io.stop();
    });
    // A second signal: stop at once.
    signals.async_wait([&](const boost::system::error_code& ec2, int) {
      if (!ec2) runtime.stop_now([&io] { io.stop(); });
    });
  });
  runtime.start();
  io.run();
  return exit_code;
}

}  // namespace sd::worker
