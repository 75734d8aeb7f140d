#include "store/migrations.hpp"

#include <array>
#include <string>

#include "store/task_store.hpp"

namespace sd::store {
namespace {

// Version 1: one row per task; its result lives in the same row once it is done.
// Indexes: sd_tasks_queue serves load_unfinished() and counts(); sd_tasks_finished,
// partial on done rows, serves purge_results_before() (its WHERE matches the query's).
// SQLite drops both in version 2.
constexpr std::array kSqliteMigrations{
    Migration{1, "tasks and results",
              R"sql(
CREATE TABLE sd_tasks (
  task_id        TEXT    NOT NULL PRIMARY KEY,
  task_type      TEXT    NOT NULL,
  task_data      TEXT    NOT NULL,
  priority       INTEGER NOT NULL,
  timeout_ms     INTEGER,
  max_retries    INTEGER NOT NULL,
  attempt        INTEGER NOT NULL,
  async          INTEGER NOT NULL,
  created_at_ms  INTEGER NOT NULL,
  seq            INTEGER NOT NULL,
  state          INTEGER NOT NULL,
  result         TEXT,
  finished_at_ms INTEGER
);
CREATE INDEX sd_tasks_queue ON sd_tasks (state, priority DESC, created_at_ms, seq);
CREATE INDEX sd_tasks_finished ON sd_tasks (finished_at_ms, seq) WHERE state = 2;
)sql"},
    // Version 2: no secondary index. sd_tasks_queue served only the start
    // (load_unfinished(), counts()) and sd_tasks_finished only the purge and the start
    // (for_each_done()), yet every task paid for them on the hot path: an entry in each at
    // acceptance or at the end, and a removal. Without them the writer does about a
    // quarter less per task; a start scans the table instead (~0.1 s per million rows),
    // and the purge looks at a window of rows per call, going round the table.
    Migration{2, "no secondary index: the start scans, the purge goes round the table",
              R"sql(
DROP INDEX sd_tasks_queue;
DROP INDEX sd_tasks_finished;
)sql"},
};

constexpr std::array kPostgresMigrations{
    Migration{1, "tasks and results",
              R"sql(
CREATE TABLE sd_tasks (
  task_id        text     NOT NULL PRIMARY KEY,
  task_type      text     NOT NULL,
  task_data      text     NOT NULL,
  priority       integer  NOT NULL,
  timeout_ms     bigint,
  max_retries    integer  NOT NULL,
  attempt        bigint   NOT NULL,
  async          boolean  NOT NULL,
  created_at_ms  bigint   NOT NULL,
  seq            bigint   NOT NULL,
  state          smallint NOT NULL,
  result         text,
  finished_at_ms bigint
);
CREATE INDEX sd_tasks_queue ON sd_tasks (state, priority DESC, created_at_ms, seq);
CREATE INDEX sd_tasks_finished ON sd_tasks (finished_at_ms, seq) WHERE state = 2;
)sql"},
};

}  // namespace

std::string_view schema_version_table_sql(SqlDialect dialect) noexcept {
  switch (dialect) {
    case SqlDialect::sqlite:
      return "CREATE TABLE IF NOT EXISTS sd_schema_version ("
             " version INTEGER NOT NULL PRIMARY KEY,"
             " description TEXT NOT NULL,"
             " applied_at_ms INTEGER NOT NULL)";
    case SqlDialect::postgres:
      return "CREATE TABLE IF NOT EXISTS sd_schema_version ("
             " version integer NOT NULL PRIMARY KEY,"
             " description text NOT NULL,"
             " applied_at_ms bigint NOT NULL)";
  }
  return {};
}

std::span<const Migration> migrations(SqlDialect dialect) noexcept {
  switch (dialect) {
    case SqlDialect::sqlite:
      return kSqliteMigrations;
    case SqlDialect::postgres:
      return kPostgresMigrations;
  }
  return {};
}

int latest_schema_version(SqlDialect dialect) noexcept {
  const auto all = migrations(dialect);
  return all.empty() ? 0 : all.back().version;
}

std::vector<Migration> pending_migrations(SqlDialect dialect, int current_version) {
  const int latest = latest_schema_version(dialect);
  if (current_version > latest) {
    throw StoreError("the database schema is at version " + std::to_string(current_version) +
                     ", newer than this build knows (" + std::to_string(latest) +
                     "); run a newer server");
  }
  std::vector<Migration> pending;
  for (const Migration& m : migrations(dialect)) {
    if (m.version > current_version) pending.push_back(m);
  }
  return pending;
}

}  // namespace sd::store
