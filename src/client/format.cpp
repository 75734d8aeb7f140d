#include "client/format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sd::client {

namespace {

std::string printf_double(const char* fmt, double value) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, fmt, value);
  return std::string(buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

std::string ms_text(double ms) { return printf_double(ms < 100 ? "%.2f" : "%.1f", ms); }

}  // namespace

std::string progress_bar(std::size_t done, std::size_t total, std::size_t width) {
  done = std::min(done, total);
  const double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(width));
  std::string bar = "[";
  for (std::size_t i = 0; i < width; ++i) bar += i < filled ? "█" : "░";
  bar += "] ";
  const auto percent = static_cast<int>(fraction * 100.0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%3d%% (%zu/%zu)", percent, done, total);
  return bar + buf;
}

std::string progress_line(std::size_t done, std::size_t total) {
  const auto percent = total == 0 ? 100 : static_cast<int>(static_cast<double>(done) * 100.0 / static_cast<double>(total));
  return "Progreso: " + std::to_string(done) + "/" + std::to_string(total) + " (" + std::to_string(percent) + "%)";
}

std::string format_seconds(double seconds, int decimals) {
  if (seconds > 0 && seconds < 0.01) {
    // Three significant digits, never in exponent form: 0.000123, 0.00456.
    decimals = 2 - static_cast<int>(std::floor(std::log10(seconds)));
  }
  const std::string fmt = "%." + std::to_string(decimals) + "f";
  return printf_double(fmt.c_str(), seconds);
}

std::vector<std::string> summary_lines(const BatchReport& report) {
  std::vector<std::string> lines;
  lines.push_back("✓ " + std::to_string(report.completed) + " tareas completadas en " +
                  format_seconds(report.elapsed_s, 2) + "s");
  const double average = report.total == 0 ? 0 : report.elapsed_s / static_cast<double>(report.total);
  lines.push_back("✓ Promedio: " + format_seconds(average, 3) + "s por tarea");
  if (report.failed > 0) {
    std::string by_code;
    for (const auto& [code, n] : report.errors) {
      if (!by_code.empty()) by_code += ", ";
      by_code += code + ": " + std::to_string(n);
    }
    lines.push_back("✗ " + std::to_string(report.failed) + " tareas fallaron (" + by_code + ")");
  }
  if (report.lost > 0) {
    lines.push_back("✗ " + std::to_string(report.lost) + " tareas sin respuesta (se agotó la espera)");
  }
  if (report.duplicates > 0) {
    lines.push_back("✗ " + std::to_string(report.duplicates) + " resultados duplicados");
  }
  if (!report.first_error.empty() && (report.failed > 0 || report.unexpected > 0)) {
    lines.push_back("  primer error: " + report.first_error);
  }
  lines.push_back("throughput: " + printf_double("%.0f", report.throughput) + " tareas/s");
  lines.push_back("latencia p50: " + ms_text(report.latency_ms.p50) + " ms  p99: " + ms_text(report.latency_ms.p99) +
                  " ms  max: " + ms_text(report.latency_ms.max) + " ms");
  return lines;
}

std::string summary_json(const BatchReport& report) {
  // Written by hand so numbers read as people write them (0.123, not 1.23E-1).
  auto count = [](std::size_t n) { return std::to_string(n); };
  auto number = [](double d) { return printf_double("%.3f", d); };
  std::string out = "{\"total\":" + count(report.total) + ",\"completed\":" + count(report.completed) +
                    ",\"failed\":" + count(report.failed) + ",\"errors\":{";
  bool first = true;
  for (const auto& [code, n] : report.errors) {
    if (!first) out.push_back(',');
    first = false;
    proto::append_json_string(out, code);
    out += ":" + count(n);
  }
  const LatencySummary& l = report.latency_ms;
  out += "},\"lost\":" + count(report.lost) + ",\"duplicates\":" + count(report.duplicates) +
         ",\"unexpected\":" + count(report.unexpected) +
         ",\"timed_out\":" + (report.timed_out ? "true" : "false") +
         ",\"elapsed_s\":" + printf_double("%.6f", report.elapsed_s) + ",\"throughput\":" + number(report.throughput) +
         ",\"latency_ms\":{\"p50\":" + number(l.p50) + ",\"p90\":" + number(l.p90) + ",\"p99\":" + number(l.p99) +
         ",\"max\":" + number(l.max) + ",\"mean\":" + number(l.mean) + ",\"min\":" + number(l.min) + "}}";
  return out;
}

std::string error_text(const proto::ResultMsg& result) {
  return std::string(proto::to_string(result.error_code)) + ": " + result.error_message;
}

}  // namespace sd::client
