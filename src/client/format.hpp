#pragma once
/// Text the client prints: progress bars, batch summaries, result lines. Pure functions
/// (no I/O, no clock), shared by the menu and the subcommands, unit-tested.

#include <cstddef>
#include <string>
#include <vector>

#include "client/batch_runner.hpp"
#include "proto/messages.hpp"

namespace sd::client {

/// "[██████████░░░░░░░░░░]  50% (500/1000)"; `width` cells of bar.
std::string progress_bar(std::size_t done, std::size_t total, std::size_t width = 30);

/// A plain progress line for output that is not a terminal: "Progreso: 500/1000 (50%)".
std::string progress_line(std::size_t done, std::size_t total);

/// Seconds for people: 2 decimals ("2.45"); 3 significant digits below 10 ms.
std::string format_seconds(double seconds, int decimals);

/// The lines after a batch, as the seed prints them, then throughput and latency:
///     ✓ 10 tareas completadas en 2.45s
///     ✓ Promedio: 0.245s por tarea
///     throughput: 4 tareas/s
///     latencia p50: 12.30 ms  p99: 20.10 ms  max: 21.00 ms
/// plus ✗ lines for failed, unanswered or duplicated tasks.
std::vector<std::string> summary_lines(const BatchReport& report);

/// The report as one compact JSON object, for `cliente batch --json`.
std::string summary_json(const BatchReport& report);

/// "code: message" of a failed result.
std::string error_text(const proto::ResultMsg& result);

}  // namespace sd::client
