#pragma once
/// The interactive menu's input rules, as pure functions: a line in, a typed value or a
/// Spanish hint out. No I/O, so every rule is unit-tested (tests/unit/menu_*_test.cpp);
/// apps/cliente.cpp does the reading and printing.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sd::client::menu {

/// The menu's options, numbered as the seed shows them.
enum class Option { exit = 0, hash = 1, fibonacci = 2, reverse = 3, compute = 4, batch = 5 };

/// A parsed line: a value, or a hint saying what to type instead.
template <class T>
struct Parsed {
  std::optional<T> value;
  std::string hint;  ///< Spanish, one line; empty when `value` is set

  static Parsed ok(T v) { return Parsed{std::move(v), {}}; }
  static Parsed bad(std::string h) { return Parsed{std::nullopt, std::move(h)}; }
  explicit operator bool() const noexcept { return value.has_value(); }
};

/// The banner printed once at start: '=' x60, "CLIENTE DEL SISTEMA DISTRIBUIDO", '=' x60.
std::string_view banner_text();

/// The list of options shown before each choice, from the first to the last '-' x60
/// line, exactly as the seed shows it. Each line ends in '\n'.
std::string_view options_text();

/// What the menu asks after showing itself.
inline constexpr std::string_view kChoicePrompt = "Selecciona una opción: ";

/// The line without surrounding blanks (spaces, tabs, a '\r' left by a Windows terminal).
std::string_view trim(std::string_view line) noexcept;

/// "0" to "5" (blanks around allowed); anything else gets a hint.
Parsed<Option> parse_option(std::string_view line);

/// How an integer prompt reads its line.
struct IntRule {
  std::optional<std::int64_t> default_value;  ///< used for an empty line; none: required
  std::int64_t min = 0;
  std::int64_t max = 0;
};

/// A decimal integer in [rule.min, rule.max] ("+5" and blanks allowed), or the default
/// for an empty line.
Parsed<std::int64_t> parse_int(std::string_view line, const IntRule& rule);

/// A text to hash or reverse: the line as typed (a trailing '\r' dropped); must not
/// be empty or all blanks.
Parsed<std::string> parse_text(std::string_view line);

/// The task types a batch can send.
inline constexpr std::string_view kBatchTypes[] = {"hash", "fibonacci", "reverse", "compute", "sleep"};

/// A task type for option 5: a name (any case) or its menu number 1-4; empty = `fallback`.
Parsed<std::string> parse_task_type(std::string_view line, std::string_view fallback = "hash");

/// The wire task_type of a task option ("hash" for Option::hash); empty for exit/batch.
std::string_view task_type_of(Option option) noexcept;

/// Rules of the menu's prompts, so that the CLI and the tests agree on them.
inline constexpr IntRule kFibonacciRule{10, 0, 10000};
inline constexpr IntRule kComputeRule{5000, 1, 100000000};
inline constexpr IntRule kBatchCountRule{std::nullopt, 1, 1000000};

/// task_data JSON texts for the built-in types.
std::string text_data(std::string_view text);                 ///< {"text":...}
std::string fibonacci_data(std::int64_t n);                   ///< {"n":n}
std::string compute_data(std::int64_t iterations, std::string_view seed = {});  ///< {"iterations":N[,"seed":s]}
std::string sleep_data(std::int64_t ms);                      ///< {"ms":ms}

/// task_data of task `index` of a batch of `task_type` tasks: texts "tarea <index>",
/// fibonacci n=10, compute 5000 iterations, sleep 10 ms.
std::string batch_task_data(std::string_view task_type, std::size_t index);

/// The task type of task `index` of option 5: hash, fibonacci, reverse, compute in turn,
/// so one batch exercises every built-in type.
std::string_view mixed_batch_type(std::size_t index) noexcept;

/// The lines option 5 prints before sending `count` tasks, as the seed does:
/// "[CLIENTE] Enviando tarea 1..." for each of up to 5 tasks; for more, the first two
/// and a "..." line.
std::vector<std::string> sending_lines(std::size_t count);

}  // namespace sd::client::menu
