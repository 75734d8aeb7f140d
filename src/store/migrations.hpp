#pragma once
/// The store's schema, as versioned migrations per SQL dialect, all in one place.
///
/// A store records the versions it applied in sd_schema_version and, when it opens,
/// applies the missing ones in order, with their sd_schema_version rows, in one
/// transaction that holds off any other process opening the same database meanwhile.
/// To change the schema, append a migration to both lists in migrations.cpp with the
/// next version number; never edit one that has shipped.
///
/// Tables (both dialects):
///   sd_schema_version(version PK, description, applied_at_ms)
///   sd_tasks(task_id PK, task_type, task_data, priority, timeout_ms NULL, max_retries,
///            attempt, async, created_at_ms, seq, state 0|1|2, result NULL,
///            finished_at_ms NULL)
/// seq is the order tasks were added in; it breaks ties of (priority, created_at_ms)
/// among unfinished tasks (and of finished_at_ms when purging). A store numbers on from
/// the largest seq of an unfinished task when it opens (a cheap index range, unlike a
/// MAX over every finished row).
///
/// Thread safety: the functions only read constant data; callable from any thread.

#include <span>
#include <string_view>
#include <vector>

namespace sd::store {

enum class SqlDialect { sqlite, postgres };

/// One step of the schema. `sql` may hold several statements separated by ';'.
struct Migration {
  int version = 0;
  std::string_view description;
  std::string_view sql;
};

/// Creates sd_schema_version if missing; run before reading the current version.
std::string_view schema_version_table_sql(SqlDialect dialect) noexcept;

/// Every migration of the dialect, by increasing version (1, 2, ...).
std::span<const Migration> migrations(SqlDialect dialect) noexcept;

/// The version the schema has once every migration is applied.
int latest_schema_version(SqlDialect dialect) noexcept;

/// The migrations still to apply to a schema at `current_version` (0 for a new one),
/// in order. Throws StoreError when current_version is newer than this build knows:
/// an older binary must not write to a schema it does not understand.
std::vector<Migration> pending_migrations(SqlDialect dialect, int current_version);

}  // namespace sd::store
