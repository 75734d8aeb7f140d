#include "client/menu.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "proto/messages.hpp"

namespace sd::client::menu {

std::string_view banner_text() {
  static const std::string text = [] {
    const std::string eq(60, '=');
    return eq + "\nCLIENTE DEL SISTEMA DISTRIBUIDO\n" + eq + "\n";
  }();
  return text;
}

std::string_view options_text() {
  static const std::string text = [] {
    const std::string dash(60, '-');
    return dash + "\nTIPOS DE TAREAS:\n" + dash +
           "\n1. Hash SHA-256\n2. Fibonacci\n3. Invertir texto\n4. Cálculo computacional\n"
           "5. Enviar múltiples tareas\n0. Salir\n" +
           dash + "\n";
  }();
  return text;
}

std::string_view trim(std::string_view line) noexcept {
  constexpr std::string_view blanks = " \t\r\n\v\f";
  const auto first = line.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  const auto last = line.find_last_not_of(blanks);
  return line.substr(first, last - first + 1);
}

namespace {

/// The line as the user typed it, quoted for a hint; long lines are cut.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 40;
  std::string out = "\"";
  out.append(text.substr(0, kMax));
  if (text.size() > kMax) out.append("...");
  out.push_back('"');
  return out;
}

std::optional<std::int64_t> to_int(std::string_view text) {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (text.empty() || text.front() == '-' || text.front() == '+') return std::nullopt;
  }
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return n;
}

bool all_digits(std::string_view text) {
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Parsed<Option> parse_option(std::string_view line) {
  const std::string_view t = trim(line);
  constexpr std::string_view choose = "Elige un número del 0 al 5.";
  if (t.empty()) return Parsed<Option>::bad("No escribiste ninguna opción. " + std::string(choose));
  const auto n = to_int(t);
  if (!n || *n < 0 || *n > 5) {
    return Parsed<Option>::bad("Opción no válida: " + quoted(t) + ". " + std::string(choose));
  }
  return Parsed<Option>::ok(static_cast<Option>(*n));
}

Parsed<std::int64_t> parse_int(std::string_view line, const IntRule& rule) {
  const std::string_view t = trim(line);
  const std::string range =
      "un número entero entre " + std::to_string(rule.min) + " y " + std::to_string(rule.max);
  if (t.empty()) {
    if (rule.default_value) return Parsed<std::int64_t>::ok(*rule.default_value);
    return Parsed<std::int64_t>::bad("No escribiste nada. Escribe " + range + ".");
  }
  const auto n = to_int(t);
  if (!n) {
    if (all_digits(t)) return Parsed<std::int64_t>::bad("Número demasiado grande. Escribe " + range + ".");
    return Parsed<std::int64_t>::bad(quoted(t) + " no es un número entero. Escribe " + range + ".");
  }
  if (*n < rule.min || *n > rule.max) {
    return Parsed<std::int64_t>::bad(std::to_string(*n) + " está fuera de rango. Escribe " + range + ".");
  }
  return Parsed<std::int64_t>::ok(*n);
}

Parsed<std::string> parse_text(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (trim(line).empty()) return Parsed<std::string>::bad("El texto no puede estar vacío. Escribe algún texto.");
  return Parsed<std::string>::ok(std::string(line));
}

Parsed<std::string> parse_task_type(std::string_view line, std::string_view fallback) {
  const std::string_view t = trim(line);
  if (t.empty()) return Parsed<std::string>::ok(std::string(fallback));
  std::string lower(t);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  if (const auto n = to_int(lower); n && *n >= 1 && *n <= 4) {
    return Parsed<std::string>::ok(std::string(task_type_of(static_cast<Option>(*n))));
  }
  for (std::string_view type : kBatchTypes) {
    if (lower == type) return Parsed<std::string>::ok(lower);
  }
  return Parsed<std::string>::bad("Tipo de tarea no válido: " + quoted(t) +
                                  ". Elige hash, fibonacci, reverse, compute o sleep.");
}

std::string_view task_type_of(Option option) noexcept {
  switch (option) {
    case Option::hash: return "hash";
    case Option::fibonacci: return "fibonacci";
    case Option::reverse: return "reverse";
    case Option::compute: return "compute";
    case Option::batch:
    case Option::exit: break;
  }
  return {};
}

std::string text_data(std::string_view text) {
  std::string out = "{\"text\":";
  proto::append_json_string(out, text);
  out.push_back('}');
  return out;
}

std::string fibonacci_data(std::int64_t n) { return "{\"n\":" + std::to_string(n) + "}"; }

std::string compute_data(std::int64_t iterations, std::string_view seed) {
  std::string out = "{\"iterations\":" + std::to_string(iterations);
  if (!seed.empty()) {
    out.append(",\"seed\":");
    proto::append_json_string(out, seed);
  }
  out.push_back('}');
  return out;
}

std::string sleep_data(std::int64_t ms) { return "{\"ms\":" + std::to_string(ms) + "}"; }

std::string batch_task_data(std::string_view task_type, std::size_t index) {
  if (task_type == "fibonacci") return fibonacci_data(10);
  if (task_type == "compute") return compute_data(5000);
  if (task_type == "sleep") return sleep_data(10);
  return text_data("tarea " + std::to_string(index));
}

std::string_view mixed_batch_type(std::size_t index) noexcept { return kBatchTypes[index % 4]; }

std::vector<std::string> sending_lines(std::size_t count) {
  std::vector<std::string> lines;
  const std::size_t shown = count <= 5 ? count : 2;
  for (std::size_t i = 1; i <= shown; ++i) lines.push_back("[CLIENTE] Enviando tarea " + std::to_string(i) + "...");
  if (count > shown) lines.emplace_back("...");
  return lines;
}

}  // namespace sd::client::menu
