// servidor: the job server. Options, logging and wiring; the work is in src/server.
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/duration.hpp"
#include "common/logging.hpp"
#include "server/server.hpp"
#include "store/task_store.hpp"

namespace {

/// Lets the server hold as many connections as --max-connections asks for.
void raise_fd_limit(std::size_t wanted) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t target = std::min<rlim_t>(lim.rlim_max, static_cast<rlim_t>(wanted + 64));
  if (lim.rlim_cur < target) {
    lim.rlim_cur = target;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

/// CLI11 validator + transform for durations such as "500ms", "2s", "24h".
std::chrono::milliseconds duration_option(const std::string& text, const char* name) {
  auto d = sd::parse_duration(text);
  if (!d) throw CLI::ValidationError(name, "not a duration (examples: 500ms, 2s, 24h): " + text);
  return *d;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"servidor: distributed task server (clients and workers on one port)"};
  sd::server::ServerOptions opt;
  std::string log_level = "info";
  std::string heartbeat_interval = "2000ms", heartbeat_timeout = "10000ms", grace = "10000ms",
              queue_timeout = "60s", result_ttl = "24h";
  std::string store_uri;
  std::string data_dir = "./sd-data";
  app.add_option("--host", opt.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", opt.port, "Port to listen on (0: any free port)")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")->capture_default_str();
  app.add_option("--max-message-bytes", opt.max_message_bytes, "Largest message accepted")->capture_default_str();
  app.add_option("--max-queued", opt.max_queued, "Queued tasks before new ones get queue_full")->capture_default_str();
  app.add_option("--max-connections", opt.max_connections, "Simultaneous connections")->capture_default_str();
  app.add_option("--max-retries", opt.default_max_retries, "Default re-runs of a task whose worker is lost")
      ->capture_default_str();
  auto* hi = app.add_option("--heartbeat-interval-ms", heartbeat_interval, "How often workers are pinged")
                 ->capture_default_str();
  auto* ht = app.add_option("--heartbeat-timeout-ms", heartbeat_timeout,
                            "Silence after which a worker is declared dead")
                 ->capture_default_str();
  auto* gr = app.add_option("--grace-ms", grace, "On SIGTERM/SIGINT, how long running tasks may take to finish")
                 ->capture_default_str();
  auto* qt = app.add_option("--queue-timeout", queue_timeout,
                            "How long a task whose type no connected worker runs may wait")
                 ->capture_default_str();
  app.add_option("--token", opt.token, "Shared secret every connection must present (env SD_TOKEN)")
      ->envname("SD_TOKEN");
  app.add_flag("--insecure", opt.insecure, "Without --token, also serve peers that are not on loopback");
  app.add_option("--store", store_uri,
                 "Where tasks and results are kept: memory (nothing survives a restart), sqlite:PATH or "
                 "postgresql://user:pass@host:port/db (default: sqlite:<data-dir>/sd.db; env SD_STORE)")
      ->envname("SD_STORE");
  app.add_option("--data-dir", data_dir, "Folder of the default SQLite store (created if missing)")
      ->capture_default_str();
  app.add_option("--result-ttl", result_ttl, "How long results are kept (e.g. 30m, 24h)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    opt.heartbeat_interval = duration_option(heartbeat_interval, "--heartbeat-interval-ms");
    opt.heartbeat_timeout = duration_option(heartbeat_timeout, "--heartbeat-timeout-ms");
    opt.grace = duration_option(grace, "--grace-ms");
    opt.queue_timeout = duration_option(queue_timeout, "--queue-timeout");
    opt.result_ttl = duration_option(result_ttl, "--result-ttl");
  } catch (const CLI::Error& e) {
    return app.exit(e);
  }
  (void)hi, (void)ht, (void)gr, (void)qt;
  if (!sd::init_logging(log_level)) {
    std::cerr << "error: unknown --log-level '" << log_level << "'\n";
    return 2;
  }
  raise_fd_limit(opt.max_connections);

  if (store_uri.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
      spdlog::error("No se pudo crear la carpeta de datos {}: {}", data_dir, ec.message());
      return 1;
    }
    store_uri = "sqlite:" + std::filesystem::absolute(std::filesystem::path(data_dir) / "sd.db").lexically_normal().string();
  }
  std::unique_ptr<sd::store::TaskStore> store;
  try {
    store = sd::store::open_store(store_uri);
  } catch (const std::exception& e) {
    spdlog::error("No se pudo abrir el almacén: {}", e.what());
    return 1;
  }

  boost::asio::io_context io(1);
  sd::server::Server server(io, opt, std::move(store));
  std::size_t recovered = 0;
  try {
    recovered = server.recover();
  } catch (const std::exception& e) {
    spdlog::error("No se pudo leer el almacén: {}", e.what());
    return 1;
  }
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::error("No se pudo escuchar en {}:{}: {}", opt.host, opt.port, e.what());
    return 1;
  }
  spdlog::info("Servidor iniciado en {}:{}", opt.host, server.port());
  spdlog::info("Esperando conexiones...");
  spdlog::info("Almacén: {}", server.store_description());
  if (recovered > 0) spdlog::info("Tareas recuperadas del almacén: {} (se vuelven a encolar)", recovered);
  if (!opt.token.empty()) {
    spdlog::info("Autenticación: se exige token en el primer mensaje de cada conexión");
  } else if (opt.insecure) {
    spdlog::warn("Modo inseguro: sin token, se atiende a cualquier dirección");
  } else {
    spdlog::info("Modo protegido: sin --token solo se atienden conexiones locales (loopback)");
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("Señal {} recibida: apagado ordenado", sig);
    server.shutdown([&io] { io.stop(); });
    // A second signal stops at once.
    signals.async_wait([&io](const boost::system::error_code& ec2, int) {
      if (!ec2) io.stop();
    });
  });
  io.run();
  spdlog::info("Servidor detenido");
  return 0;
}
