#pragma once
/// A TaskStore in a PostgreSQL database ("postgresql://user:pass@host:port/db").
///
/// One libpq connection. Statements are prepared once per connection. A write() is one
/// transaction sent as a single pipeline (BEGIN, up to four multi-row statements taking
/// arrays through unnest(), COMMIT): one round trip per batch, whatever its size.
///
/// The tables (sd_schema_version, sd_tasks) go in the first schema of the connection's
/// search_path, normally `public`; give the server a database (or a schema, through
/// "?options=-csearch_path%3Dsd") of its own.
///
/// Failures: the constructor throws StoreError if the server cannot be reached. When the
/// connection breaks later (server restarted, backend killed), the next call reconnects;
/// a call that finds the connection broken reconnects and retries itself once, which is
/// safe because every call is idempotent (a write() replayed ends in the same state).
/// If the server is still down, the call throws StoreError and the next one tries again.
///
/// Assumes one server process writes to a database (seq, the FIFO tie-break, is
/// numbered by the process; two writers would only blur the order of equal timestamps).
///
/// Thread safety: one thread at a time (like every TaskStore).

#include <cstdint>
#include <memory>
#include <string>

#include "store/task_store.hpp"

namespace sd::store {

struct PostgresOptions {
  /// Seconds to wait for a connection (libpq connect_timeout) unless the URI sets one.
  int connect_timeout_s = 10;
  /// Shown in pg_stat_activity unless the URI sets application_name.
  std::string application_name = "sd-server";
};

class PostgresStore final : public TaskStore {
 public:
  /// Connects to `uri` (any libpq connection URI) and brings the schema up to date.
  /// Throws StoreError "cannot open postgres store at URI: CAUSE" (password redacted).
  explicit PostgresStore(std::string uri, PostgresOptions options = {});
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  void write(const WriteBatch& batch) override;
  std::vector<TaskRecord> load_unfinished() override;
  std::optional<StoredResult> find_result(std::string_view task_id) override;
  std::optional<TaskRecord> find_task(std::string_view task_id) override;
  std::int64_t purge_results_before(std::int64_t finished_before_ms, std::int64_t limit) override;
  void for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) override;
  StoreCounts counts() override;
  std::string describe() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sd::store
