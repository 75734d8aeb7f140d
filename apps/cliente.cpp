// cliente: the seed's interactive menu, and subcommands for scripts.
//
//   cliente                         the menu (1-5, 0 to quit)
//   cliente hash "Hola Mundo"       one task; prints its result JSON
//   cliente batch --count 1000      many tasks pipelined; prints throughput and latency
//
// Exit status: 0 success, 1 a task failed, 2 the server is unreachable or the connection
// broke, CLI11's codes for usage errors; 130 on Ctrl-C.

#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "client/batch_runner.hpp"
#include "client/client.hpp"
#include "client/format.hpp"
#include "client/menu.hpp"
#include "common/duration.hpp"

namespace {

using sd::client::BatchOptions;
using sd::client::BatchReport;
using sd::client::BatchRunner;
using sd::client::Client;
using sd::client::ClientError;
using sd::client::ErrorKind;
namespace menu = sd::client::menu;
namespace proto = sd::proto;

volatile sig_atomic_t g_stdout_is_tty = 0;

extern "C" void on_sigint(int) {
  // Async-signal-safe only: end a half-drawn progress bar's line, then leave. The
  // terminal's modes were never changed, so there is nothing to restore.
  if (g_stdout_is_tty != 0) {
    const char newline = '\n';
    [[maybe_unused]] const auto n = write(STDOUT_FILENO, &newline, 1);
  }
  _exit(130);
}

void install_signal_handlers() {
  g_stdout_is_tty = isatty(STDOUT_FILENO) ? 1 : 0;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  // A closed socket or pipe shows up as an error on the write, not as a dead process.
  signal(SIGPIPE, SIG_IGN);
}

/// Options shared by every subcommand and by the menu.
struct Globals {
  std::string host = "localhost";
  int port = 9000;
  std::string token;
  std::string timeout_text = "30s";
  std::chrono::milliseconds timeout{30000};
  bool json = false;
  int priority = 0;
  std::int64_t task_timeout_ms = 0;  // 0: none
  int max_retries = -1;              // -1: the server's default

  [[nodiscard]] sd::client::ConnectOptions connect_options() const {
    sd::client::ConnectOptions o;
    o.host = host;
    o.port = static_cast<std::uint16_t>(port);
    o.timeout = timeout;
    o.token = token;
    return o;
  }

  [[nodiscard]] proto::TaskMsg task(std::string type, std::string data) const {
    proto::TaskMsg t;
    t.task_type = std::move(type);
    t.task_data = std::move(data);
    t.priority = priority;
    if (task_timeout_ms > 0) t.timeout_ms = task_timeout_ms;
    if (max_retries >= 0) t.max_retries = max_retries;
    return t;
  }
};

/// Exit status of a client failure: 2 when the server is out of reach, else 1.
int exit_status_of(const ClientError& e) {
  switch (e.kind()) {
    case ErrorKind::connect:
    case ErrorKind::lost:
    case ErrorKind::unauthorized:
    case ErrorKind::protocol:
      return 2;
    case ErrorKind::timeout:
    case ErrorKind::rejected:
      break;
  }
  return 1;
}

// ------------------------------------------------------------------------ batches

/// Draws the progress bar in place on a terminal; prints nothing otherwise.
sd::client::ProgressCallback progress_printer(bool enabled) {
  if (!enabled) return {};
  return [](const sd::client::BatchProgress& p) {
    std::cout << '\r' << sd::client::progress_bar(p.done(), p.total) << std::flush;
  };
}

BatchReport run_batch(Client& client, const BatchOptions& options, const sd::client::TaskFactory& factory,
                      bool show_progress) {
  BatchRunner runner(client.connection(), options);
  BatchReport report = runner.run(factory, progress_printer(show_progress));
  if (show_progress) std::cout << '\n';
  return report;
}

void print_summary(const BatchReport& report) {
  for (const std::string& line : sd::client::summary_lines(report)) std::cout << line << '\n';
}

// ------------------------------------------------------------------------ the menu

/// Reads one line after showing `prompt`; nullopt at the end of input.
std::optional<std::string> ask(std::string_view prompt) {
  std::cout << prompt << std::flush;
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  return line;
}

class Menu {
 public:
  explicit Menu(const Globals& globals) : g_(globals) {}

  int run() {
    std::cout << menu::banner_text();
    for (;;) {
      std::cout << '\n' << menu::options_text() << '\n';
      const auto line = ask(menu::kChoicePrompt);
      if (!line) return goodbye(true);
      const auto choice = menu::parse_option(*line);
      if (!choice) {
        std::cout << choice.hint << '\n';
        continue;
      }
      if (*choice.value == menu::Option::exit) return goodbye(false);
      if (!handle(*choice.value)) return goodbye(true);
    }
  }

 private:
  static int goodbye(bool at_eof) {
    if (at_eof) std::cout << '\n';
    std::cout << "¡Hasta luego!" << std::endl;
    return 0;
  }

  /// Runs one option; false when the input ended while it asked for something.
  bool handle(menu::Option option) {
    using menu::Option;
    std::string data;
    if (option == Option::hash || option == Option::reverse) {
      const auto line = ask("Ingresa el texto: ");
      if (!line) return false;
      const auto text = menu::parse_text(*line);
      if (!text) return hint(text.hint);
      data = menu::text_data(*text.value);
    } else if (option == Option::fibonacci) {
      const auto line = ask("Cantidad de números (default 10): ");
      if (!line) return false;
      const auto n = menu::parse_int(*line, menu::kFibonacciRule);
      if (!n) return hint(n.hint);
      data = menu::fibonacci_data(*n.value);
    } else if (option == Option::compute) {
      const auto line = ask("Iteraciones (default 5000): ");
      if (!line) return false;
      const auto n = menu::parse_int(*line, menu::kComputeRule);
      if (!n) return hint(n.hint);
      data = menu::compute_data(*n.value);
    } else if (option == Option::batch) {
      const auto line = ask("¿Cuántas tareas? ");
      if (!line) return false;
      const auto n = menu::parse_int(*line, menu::kBatchCountRule);
      if (!n) return hint(n.hint);
      guarded([&] { batch(static_cast<std::size_t>(*n.value)); });
      return true;
    }
    guarded([&] { single(std::string(menu::task_type_of(option)), data); });
    return true;
  }

  static bool hint(const std::string& text) {
    std::cout << text << '\n';
    return true;
  }

  Client& client() {
    if (!client_) client_.emplace(g_.connect_options());
    return *client_;
  }

  /// Runs `fn`; a client failure is reported and the menu goes on (reconnecting next
  /// time if the connection is gone).
  template <class Fn>
  void guarded(Fn&& fn) {
    try {
      fn();
    } catch (const ClientError& e) {
      // On stdout, in order with the rest of the conversation.
      std::cout << "[CLIENTE] Error: " << e.what() << std::endl;
      if (e.kind() != ErrorKind::rejected) client_.reset();
    }
  }

  void single(const std::string& type, const std::string& data) {
    Client& c = client();
    proto::TaskMsg task = g_.task(type, data);
    task.task_id = c.ids().next();
    std::cout << "\n[CLIENTE] Enviando tarea " << task.task_id << " (tipo: " << type << ")" << std::endl;
    const std::string id = c.submit(std::move(task));
    const proto::ResultMsg r = c.wait_result(id, g_.timeout);
    if (r.ok) {
      std::cout << "[CLIENTE] Tarea " << id << " completada\n"
                << "[CLIENTE] Resultado: " << r.result << std::endl;
    } else {
      std::cout << "[CLIENTE] Error en tarea " << id << ": " << sd::client::error_text(r) << std::endl;
    }
  }

  void batch(std::size_t count) {
    Client& c = client();
    std::cout << "\nEnviando " << count << " tareas...\n";
    for (const std::string& line : menu::sending_lines(count)) std::cout << line << '\n';
    std::cout << std::flush;
    BatchOptions options;
    options.count = count;
    options.idle_timeout = g_.timeout;
    const Globals& g = g_;
    const BatchReport report = run_batch(
        c, options,
        [&g](std::size_t i) {
          const std::string_view type = menu::mixed_batch_type(i);
          return g.task(std::string(type), menu::batch_task_data(type, i));
        },
        g_stdout_is_tty != 0);
    print_summary(report);
    std::cout << std::flush;
  }

  const Globals& g_;
  std::optional<Client> client_;
};

// ------------------------------------------------------------------------ subcommands

/// Prints one task's outcome as scripts expect it and returns the exit status:
/// the result (or, with --json, the RESULT line as received) on stdout, 0; an error on stderr, 1.
int print_result(const Globals& g, const Client& client, const proto::ResultMsg& r) {
  if (g.json) {
    std::cout << client.last_raw() << std::endl;
  } else if (r.ok) {
    std::cout << r.result << std::endl;
  }
  if (!r.ok) {
    std::cerr << "error: " << sd::client::error_text(r) << std::endl;
    return 1;
  }
  return 0;
}

int run_task(const Globals& g, proto::TaskMsg task) {
  Client client(g.connect_options());
  const std::string id = client.submit(std::move(task));
  const proto::ResultMsg r = client.wait_result(id, g.timeout);
  return print_result(g, client, r);
}

struct BatchArgs {
  std::size_t count = 100;
  std::string type = "hash";
  std::size_t window = 1000;
  std::string data;
};

int run_batch_command(const Globals& g, const BatchArgs& args) {
  Client client(g.connect_options());
  if (!g.json) std::cout << "Enviando " << args.count << " tareas..." << std::endl;
  BatchOptions options;
  options.count = args.count;
  options.window = args.window;
  options.idle_timeout = g.timeout;
  const BatchReport report = run_batch(
      client, options,
      [&](std::size_t i) {
        return g.task(args.type, args.data.empty() ? menu::batch_task_data(args.type, i) : args.data);
      },
      !g.json && isatty(STDOUT_FILENO) != 0);
  if (g.json) {
    std::cout << sd::client::summary_json(report) << std::endl;
  } else {
    print_summary(report);
    std::cout << std::flush;
  }
  return report.all_ok() ? 0 : 1;
}

/// `cliente submit --async TYPE ...`: the task stored on the server, its id printed.
int run_submit(const Globals& g, proto::TaskMsg task, bool async) {
  if (!async) return run_task(g, std::move(task));
  Client client(g.connect_options());
  task.task_id = client.ids().next();
  const std::string id = client.submit_async(std::move(task), g.timeout);
  std::cout << id << std::endl;
  return 0;
}

/// `cliente result ID [--wait 5s]`: the stored result (exit 1 if not done or unknown).
int run_result(const Globals& g, const std::string& id, std::chrono::milliseconds wait) {
  Client client(g.connect_options());
  const auto answer = client.get_result(id, wait.count());
  if (const auto* status = std::get_if<proto::StatusMsg>(&answer)) {
    if (g.json) {
      std::cout << client.last_raw() << std::endl;
    } else {
      std::cerr << "tarea " << id << ": " << status->state
                << (status->state == "unknown" ? " (desconocida o ya purgada)" : " (aún no terminó)") << std::endl;
    }
    return 1;
  }
  const auto& r = std::get<proto::ResultMsg>(answer);
  return print_result(g, client, r);
}

int run_stats(const Globals& g) {
  Client client(g.connect_options());
  std::cout << client.stats(g.timeout) << std::endl;
  return 0;
}

int run_ping(const Globals& g) {
  Client client(g.connect_options());
  const auto rtt = client.ping(g.timeout);
  if (g.json) {
    std::cout << client.connection().last_frame() << std::endl;
  } else {
    std::cout << "PONG de " << client.connection().endpoint() << " en "
              << sd::client::format_seconds(static_cast<double>(rtt.count()) / 1000.0, 2) << " ms" << std::endl;
  }
  return 0;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

/// A JSON object given on the command line, made compact (one line on the wire).
std::string compact_json(const std::string& text) { return boost::json::serialize(boost::json::parse(text)); }

/// CLI11 check: a JSON object.
std::string check_json_object(const std::string& text) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return "debe ser un objeto JSON, p. ej. '{\"text\":\"hola\"}'";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  install_signal_handlers();

  CLI::App app{"Cliente del sistema distribuido: envía tareas al servidor.\n"
               "Sin subcomando abre el menú interactivo."};
  app.fallthrough();  // global options may also follow the subcommand
  app.require_subcommand(0, 1);

  Globals g;
  app.add_option("--host", g.host, "Servidor")->capture_default_str();
  app.add_option("--port", g.port, "Puerto del servidor")->capture_default_str()->check(CLI::Range(1, 65535));
  app.add_option("--token", g.token, "Token de acceso (o la variable SD_TOKEN)")->envname("SD_TOKEN");
  app.add_option("--timeout", g.timeout_text, "Espera máxima por respuesta, p. ej. 500ms, 30s, 2m")
      ->capture_default_str()
      ->check([](const std::string& text) -> std::string {
        const auto d = sd::parse_duration(text);
        return d && d->count() > 0 ? std::string() : "duración no válida (ejemplos: 500ms, 30s, 2m)";
      });
  app.add_flag("--json", g.json, "Imprime los mensajes RESULT tal como llegan (batch: un resumen JSON)");
  app.add_option("--priority", g.priority, "Prioridad de las tareas (mayor primero)")->capture_default_str();
  app.add_option("--timeout-ms", g.task_timeout_ms, "Tiempo máximo de cada tarea en el servidor (ms)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-retries", g.max_retries, "Reintentos si un worker se pierde")->check(CLI::Range(0, 100));

  std::vector<std::string> words;
  std::int64_t number = 0;
  std::string seed;
  std::string task_type;
  std::string task_data;
  BatchArgs batch;

  auto* hash = app.add_subcommand("hash", "SHA-256 de un texto");
  hash->add_option("text", words, "Texto")->required();
  auto* reverse = app.add_subcommand("reverse", "Invierte un texto");
  reverse->add_option("text", words, "Texto")->required();
  auto* fibonacci = app.add_subcommand("fibonacci", "Los primeros N números de Fibonacci");
  fibonacci->add_option("n", number, "Cantidad de números (0-10000)")->required();
  auto* compute = app.add_subcommand("compute", "Cálculo intensivo: N rondas de SHA-256");
  compute->add_option("iterations", number, "Iteraciones")->required();
  compute->add_option("--seed", seed, "Semilla (texto)");
  auto* sleep = app.add_subcommand("sleep", "Espera N ms (para pruebas)");
  sleep->add_option("ms", number, "Milisegundos")->required();
  auto* task = app.add_subcommand("task", "Una tarea de cualquier tipo: TIPO '{...}'");
  task->add_option("type", task_type, "task_type")->required();
  task->add_option("data", task_data, "task_data (objeto JSON)")->required()->check(check_json_object);
  auto* batch_cmd = app.add_subcommand("batch", "Muchas tareas en paralelo por una conexión");
  batch_cmd->add_option("--count,-n", batch.count, "Cantidad de tareas")->capture_default_str()->check(
      CLI::Range(std::size_t{1}, std::size_t{100000000}));
  batch_cmd->add_option("--type,-t", batch.type, "Tipo de tarea")->capture_default_str();
  batch_cmd->add_option("--window,-w", batch.window, "Tareas en vuelo a la vez (0 = todas)")->capture_default_str();
  batch_cmd->add_option("--data", batch.data, "task_data de cada tarea (objeto JSON)")->check(check_json_object);
  bool async = false;
  std::string submit_type;
  std::vector<std::string> submit_args;
  auto* submit = app.add_subcommand("submit", "Envía una tarea: TIPO TEXTO|N|'{...}' (con --async, imprime su id)");
  submit->add_flag("--async", async, "No espera el resultado: el servidor lo guarda (cliente result ID)");
  submit->add_option("type", submit_type, "hash, reverse, fibonacci, compute, sleep u otro tipo")->required();
  submit->add_option("args", submit_args, "Texto, número u objeto JSON (task_data)")->required();
  std::string result_id;
  std::string wait_text = "0s";
  auto* result = app.add_subcommand("result", "El resultado de una tarea enviada con submit --async");
  result->add_option("id", result_id, "task_id")->required();
  result->add_option("--wait", wait_text, "Espera hasta que termine, como mucho esto (p. ej. 5s)")
      ->check([](const std::string& text) -> std::string {
        return sd::parse_duration(text) ? std::string() : "duración no válida (ejemplos: 500ms, 5s)";
      });
  auto* stats = app.add_subcommand("stats", "Estadísticas del servidor (JSON)");
  auto* ping = app.add_subcommand("ping", "Comprueba que el servidor responde");

  CLI11_PARSE(app, argc, argv);
  g.timeout = *sd::parse_duration(g.timeout_text);
  if (!task_data.empty()) task_data = compact_json(task_data);
  if (!batch.data.empty()) batch.data = compact_json(batch.data);

  try {
    if (*hash) return run_task(g, g.task("hash", menu::text_data(join(words))));
    if (*reverse) return run_task(g, g.task("reverse", menu::text_data(join(words))));
    if (*fibonacci) return run_task(g, g.task("fibonacci", menu::fibonacci_data(number)));
    if (*compute) return run_task(g, g.task("compute", menu::compute_data(number, seed)));
    if (*sleep) return run_task(g, g.task("sleep", menu::sleep_data(number)));
    if (*task) return run_task(g, g.task(task_type, task_data));
    if (*batch_cmd) return run_batch_command(g, batch);
    if (*submit) {
      std::string data;
      const std::string joined = join(submit_args);
      if (!joined.empty() && joined.front() == '{') {
        if (!check_json_object(joined).empty()) throw std::runtime_error("task_data: " + check_json_object(joined));
        data = compact_json(joined);
      } else if (submit_type == "fibonacci") {
        data = menu::fibonacci_data(std::stoll(joined));
      } else if (submit_type == "compute") {
        data = menu::compute_data(std::stoll(joined), "");
      } else if (submit_type == "sleep") {
        data = menu::sleep_data(std::stoll(joined));
      } else {
        data = menu::text_data(joined);
      }
      return run_submit(g, g.task(submit_type, data), async);
    }
    if (*result) return run_result(g, result_id, *sd::parse_duration(wait_text));
    if (*stats) return run_stats(g);
    if (*ping) return run_ping(g);
    return Menu(g).run();
  } catch (const ClientError& e) {
    std::cout << std::flush;
    std::cerr << "error: " << e.what() << std::endl;
    return exit_status_of(e);
  } catch (const std::exception& e) {
    std::cout << std::flush;
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}
