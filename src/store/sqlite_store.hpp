#pragma once
/// A TaskStore in one SQLite file ("sqlite:PATH").
///
/// The file is in WAL mode with synchronous=NORMAL: a committed write() survives a crash
/// of the process (what the server needs); a power loss may lose the last few commits
/// but never corrupts the file. One store owns the file: it holds an flock() on
/// "<file>-lock" while open, and a second store on the same file fails to open
/// ("database is locked"); through SQLite's "unix-excl" VFS, the process also holds an
/// exclusive lock on the file, so no other process (the sqlite3 shell) reads it
/// meanwhile. The WAL is copied back into the file by a SqliteCheckpointer, on its own
/// thread and connection (both share the WAL index in memory), not inside a commit.
///
/// One connection for everything else, opened in the constructor; statements are
/// prepared once and reused, and every value is a bound parameter. A write() is one
/// BEGIN IMMEDIATE ... COMMIT.
///
/// The table has no index besides its task_id key, so that a task costs two row writes
/// and no more: opening (load_unfinished(), counts(), for_each_done()) scans the table,
/// and purge_results_before() looks at a window of rows per call (see TaskStore).
///
/// Thread safety: one thread at a time (like every TaskStore).

#include <cstdint>
#include <memory>
#include <string>

#include "store/sqlite_checkpointer.hpp"
#include "store/task_store.hpp"

namespace sd::store {

struct SqliteOptions {
  /// How long a statement waits for a lock another connection holds before failing.
  int busy_timeout_ms = 5000;
  /// When the WAL is copied back into the database (see SqliteCheckpointer).
  CheckpointPages checkpoint;
};

class SqliteStore final : public TaskStore {
 public:
  /// Opens (creating if missing) the database at `path`, which may also be an SQLite
  /// "file:" URI (e.g. "file:/x/sd.db?mode=ro"), and brings its schema up to date.
  /// Throws StoreError "cannot open sqlite store at PATH: CAUSE" when the file cannot be
  /// created, is read-only, is not a database, or has a newer schema.
  explicit SqliteStore(std::string path, SqliteOptions options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void write(const WriteBatch& batch) override;
  std::vector<TaskRecord> load_unfinished() override;
  std::optional<StoredResult> find_result(std::string_view task_id) override;
  std::optional<TaskRecord> find_task(std::string_view task_id) override;
  std::int64_t purge_results_before(std::int64_t finished_before_ms, std::int64_t limit) override;
  void for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) override;
  StoreCounts counts() override;
  std::string describe() const override;

  /// Caps the file at `pages` database pages (PRAGMA max_page_count); a write that needs
  /// more fails as on a full disk (SQLITE_FULL). 0 lifts the cap. A cap below the
  /// current size takes the current size. For bounding disk use, and for testing the
  /// disk-full path.
  void set_max_page_count(std::int64_t pages);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sd::store
