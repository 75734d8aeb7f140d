#pragma once
/// Copies an SQLite database's write-ahead log back into the database file on a thread
/// and connection of its own, so that the store's writer does not do it inside a commit.
///
/// Why: SQLite's automatic checkpoint runs in the COMMIT that makes the WAL pass its
/// threshold. With a 64 MiB threshold, that COMMIT copied ~50 MB and synced the file:
/// ~200 ms during which nothing was acknowledged (sd-bench, SQLite store, 4 x 64 in
/// flight: max latency 173-235 ms). A PASSIVE checkpoint on another connection runs
/// beside the writer's commits: it takes no lock that a writer needs.
///
/// How (SqliteStore calls after_commit() from its WAL hook, after each commit):
/// - once the WAL holds `start_pages`, every `step_pages` more start a pass here, which
///   syncs the WAL and copies what was committed so far into the database file (SQLite
///   syncs the database file only after a pass that copied the whole WAL);
/// - a pass cannot start the WAL over while commits keep coming, so at `catch_up_pages`
///   the writer waits for one more pass (the last few MiB; 20-55 ms here) and its next
///   transaction starts the WAL from the beginning. If that did not happen (a reader,
///   such as an sqlite3 shell, holds an old snapshot), the next catch-up comes
///   `catch_up_pages` later: never one per commit.
///
/// Thread safety: after_commit() from one thread (the writer's); the rest is internal.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace sd::store {

struct CheckpointPages {
  /// 32 MiB of 4 KiB pages: a burst that writes less is not slowed by passes at all
  /// (with 8 MiB, `make durability-cost` lost ~5% to them).
  int start_pages = 8192;
  int step_pages = 1024;       ///< 4 MiB
  int catch_up_pages = 16384;  ///< 64 MiB
};

class SqliteCheckpointer {
 public:
  /// Opens a second connection to the database file `path` (absolute, as
  /// sqlite3_db_filename reports it) and starts the thread. Throws StoreError.
  SqliteCheckpointer(const std::string& path, CheckpointPages pages, int busy_timeout_ms);
  ~SqliteCheckpointer();  ///< waits for a pass under way, then closes
  SqliteCheckpointer(const SqliteCheckpointer&) = delete;
  SqliteCheckpointer& operator=(const SqliteCheckpointer&) = delete;

  /// Called after each commit with the WAL's size in pages: may start a pass (and return
  /// at once), or wait for the catch-up pass.
  void after_commit(int wal_pages);

 private:
  void run(std::stop_token stop);

  sqlite3* db_ = nullptr;
  const CheckpointPages pages_;
  const std::chrono::milliseconds busy_timeout_;
  // The writer's thread only:
  int requested_at_pages_ = 0;  ///< WAL size at the last request; 0 after a restart
  int catch_up_at_pages_;       ///< WAL size of the next catch-up
  // Shared with the thread:
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::condition_variable done_;  ///< a pass ended
  bool requested_ = false;
  bool running_ = false;  ///< a pass is under way
  int passes_ = 0;
  std::jthread thread_;  ///< last: started when the rest exists
};

}  // namespace sd::store
