#include "store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "../store/store_conformance.hpp"
#include "store/migrations.hpp"

namespace sd::store::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance,
                         ::testing::Values(StoreFactory{
                             "Sqlite", [] { return std::string(); },
                             [] { return std::make_unique<SqliteEnv>(); }}),
                         factory_name);

std::string open_error(const std::string& path) {
  try {
    SqliteStore store(path);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "(no error)";
}

/// A second, plain connection to the file, as the sqlite3 CLI would open it.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("raw open");
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  /// Runs test SQL; returns the first column of the last row, "" when none.
  std::string exec(const std::string& sql) {
    std::string out;
    char* err = nullptr;
    const int rc = sqlite3_exec(
        db_, sql.c_str(),
        [](void* o, int, char** values, char**) {
          *static_cast<std::string*>(o) = values[0] ? values[0] : "NULL";
          return 0;
        },
        &out, &err);
    if (rc != SQLITE_OK) {
      std::string message = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("test SQL failed: " + message);
    }
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

StoredTask task(const std::string& id) {
  StoredTask t;
  t.task_id = id;
  t.task_type = "hash";
  t.task_data_json = R"({"text":"x"})";
  t.created_at_ms = 1;
  return t;
}

TEST(SqliteStore, DescribesItselfWithAbsolutePath) {
  TempDir dir;
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  std::string description;
  try {
    description = SqliteStore("relative.db").describe();
  } catch (...) {
    std::filesystem::current_path(cwd);
    throw;
  }
  std::filesystem::current_path(cwd);
  EXPECT_EQ(description,
            "sqlite:" + (dir.path() / "relative.db").string() + " (WAL, synchronous=NORMAL)");
}

TEST(SqliteStore, FileIsInWalModeWithEveryMigrationRecordedOnce) {
  SqliteEnv env;
  env.open();
  env.open();  // a second open applies nothing again
  RawDb raw(env.file());
  EXPECT_EQ(raw.exec("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.exec("SELECT count(*) FROM sd_schema_version"),
            std::to_string(migrations(SqlDialect::sqlite).size()));
  EXPECT_EQ(raw.exec("SELECT max(version) FROM sd_schema_version"),
            std::to_string(latest_schema_version(SqlDialect::sqlite)));
}

TEST(SqliteStore, TheTableHasNoIndexButItsKey) {
  SqliteEnv env;
  env.open();
  RawDb raw(env.file());
  EXPECT_EQ(raw.exec("SELECT group_concat(name, ',') FROM sqlite_master WHERE type = 'index'"
                     " AND tbl_name = 'sd_tasks'"),
            "sqlite_autoindex_sd_tasks_1");
}

TEST(SqliteStore, AVersion1DatabaseIsMigratedKeepingItsTasks) {
  SqliteEnv env;
  {
    // What a server of schema version 1 left: its tables, indexes and one task.
    RawDb raw(env.file());
    raw.exec(std::string(schema_version_table_sql(SqlDialect::sqlite)));
    raw.exec(std::string(migrations(SqlDialect::sqlite)[0].sql));
    raw.exec("INSERT INTO sd_schema_version (version, description, applied_at_ms) VALUES (1, 'v1', 0)");
    raw.exec("INSERT INTO sd_tasks (task_id, task_type, task_data, priority, max_retries, attempt, async,"
             " created_at_ms, seq, state) VALUES ('kept', 'hash', '{\"text\":\"x\"}', 0, 3, 0, 1, 1, 1, 0)");
  }
  {
    auto store = env.open();
    const auto unfinished = store->load_unfinished();
    ASSERT_EQ(unfinished.size(), 1u);
    EXPECT_EQ(unfinished[0].task.task_id, "kept");
  }  // closed: its exclusive lock kept every other connection off the file
  RawDb raw(env.file());
  EXPECT_EQ(raw.exec("SELECT max(version) FROM sd_schema_version"),
            std::to_string(latest_schema_version(SqlDialect::sqlite)));
  EXPECT_EQ(raw.exec("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"), "0");
}

// With no index on finish times, a purge call looks at a window of 8 x limit rows and
// goes round the table: expired results behind rows it cannot delete (unfinished ones,
// fresh results) are reached in later calls, and nothing fresh is ever deleted.
TEST(SqliteStore, PurgeGoesRoundTheTableWindowByWindow) {
  SqliteEnv env;
  auto store = env.open();
  WriteBatch b;
  for (int i = 0; i < 100; ++i) b.add_task(task("queued" + std::to_string(i)));
  for (int i = 0; i < 50; ++i) {
    b.add_task(task("old" + std::to_string(i)));
    b.finish(StoredResult{"old" + std::to_string(i), R"({"type":"RESULT"})", 10 + i});
  }
  for (int i = 0; i < 20; ++i) {
    b.add_task(task("fresh" + std::to_string(i)));
    b.finish(StoredResult{"fresh" + std::to_string(i), R"({"type":"RESULT"})", 1000});
  }
  store->write(b);
  ASSERT_EQ(store->counts(), (StoreCounts{100, 0, 70}));

  // limit 2: windows of 16 rows; the first 100 rows hold nothing to delete.
  std::int64_t purged = 0;
  int calls = 0;
  while (purged < 50 && calls < 100) {
    const std::int64_t n = store->purge_results_before(500, 2);
    ASSERT_LE(n, 2);
    purged += n;
    ++calls;
  }
  EXPECT_EQ(purged, 50);
  EXPECT_GT(calls, 25);  // 2 per call, after going past the unfinished rows
  EXPECT_EQ(store->counts(), (StoreCounts{100, 0, 20}));
  EXPECT_EQ(store->find_result("old49"), std::nullopt);
  EXPECT_TRUE(store->find_result("fresh0").has_value());
  for (int i = 0; i < 30; ++i) EXPECT_EQ(store->purge_results_before(500, 2), 0);  // two rounds
  EXPECT_EQ(store->counts(), (StoreCounts{100, 0, 20}));
}

TEST(SqliteStore, NewerSchemaIsRefused) {
  SqliteEnv env;
  env.open();
  RawDb(env.file())
      .exec(
          "INSERT INTO sd_schema_version (version, description, applied_at_ms) "
          "VALUES (999, 'from the future', 0)");
  EXPECT_EQ(open_error(env.file()),
            "cannot open sqlite store at " + env.file() +
                ": the database schema is at version 999, newer than this build knows (" +
                std::to_string(latest_schema_version(SqlDialect::sqlite)) +
                "); run a newer server");
}

TEST(SqliteStore, ReadOnlyDatabaseIsRefused) {
  // Root writes through any file mode, so the read-only open comes from SQLite's own
  // mode=ro, which behaves as a write-protected file does for an ordinary user.
  SqliteEnv env;
  env.open();
  const std::string uri = "file:" + env.file() + "?mode=ro";
  EXPECT_EQ(open_error(uri),
            "cannot open sqlite store at " + uri + ": attempt to write a readonly database");
}

TEST(SqliteStore, WriteProtectedFileIsRefused) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root writes through file modes; ReadOnlyDatabaseIsRefused covers this case";
  }
  SqliteEnv env;
  env.open();
  ASSERT_EQ(chmod(env.file().c_str(), 0444), 0);
  EXPECT_EQ(open_error(env.file()),
            "cannot open sqlite store at " + env.file() + ": attempt to write a readonly database");
}

TEST(SqliteStore, MissingFolderIsRefused) {
  EXPECT_EQ(open_error("/nonexistent-sd-folder/sub/sd.db"),
            "cannot open sqlite store at /nonexistent-sd-folder/sub/sd.db: unable to open "
            "database file (No such file or directory)");
}

TEST(SqliteStore, FolderThatRefusesFilesIsRefused) {
  // /proc takes no new files, not even from root: a folder without write permission.
  const std::string message = open_error("/proc/sd-store-test.db");
  EXPECT_EQ(message.rfind("cannot open sqlite store at /proc/sd-store-test.db: unable to open "
                          "database file (",
                          0),
            0u)
      << message;
}

TEST(SqliteStore, UnwritableFolderIsRefused) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root writes through folder modes; FolderThatRefusesFilesIsRefused covers it";
  }
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0555), 0);
  const std::string path = (dir.path() / "sd.db").string();
  const std::string message = open_error(path);
  chmod(dir.path().c_str(), 0755);
  EXPECT_EQ(message, "cannot open sqlite store at " + path +
                         ": unable to open database file (Permission denied)");
}

TEST(SqliteStore, PathThroughARegularFileIsRefused) {
  TempDir dir;
  std::ofstream(dir.path() / "file.txt") << "x";
  const std::string path = (dir.path() / "file.txt" / "sd.db").string();
  EXPECT_EQ(open_error(path), "cannot open sqlite store at " + path +
                                  ": unable to open database file (Not a directory)");
}

TEST(SqliteStore, FileThatIsNotADatabaseIsRefused) {
  TempDir dir;
  const std::string path = (dir.path() / "sd.db").string();
  std::ofstream(path) << std::string(4096, 'G');
  EXPECT_EQ(open_error(path), "cannot open sqlite store at " + path + ": file is not a database");
}

TEST(SqliteStore, DiskFullWriteFailsWholeAndSucceedsOnceThereIsRoom) {
  SqliteEnv env;
  SqliteStore store(env.file());
  WriteBatch first;
  first.add_task(task("before"));
  store.write(first);

  store.set_max_page_count(1);  // takes the current size: no room for anything more
  WriteBatch big;
  for (int i = 0; i < 2000; ++i) big.add_task(task("t" + std::to_string(i)));
  big.start("before", 1);
  try {
    store.write(big);
    FAIL() << "the write should not fit";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()),
              "sqlite store at " + env.file() + ": write failed: database or disk is full");
  }
  EXPECT_EQ(store.counts(), (StoreCounts{1, 0, 0}));  // nothing of the batch applied
  EXPECT_EQ(store.find_task("before")->state, TaskState::queued);

  store.set_max_page_count(0);  // room again: the same batch goes through
  store.write(big);
  EXPECT_EQ(store.counts(), (StoreCounts{2000, 1, 0}));
}

TEST(SqliteStore, ASecondStoreOnAnOpenFileIsRefused) {
  SqliteEnv env;
  auto first = std::make_unique<SqliteStore>(env.file(), SqliteOptions{.busy_timeout_ms = 50, .checkpoint = {}});
  WriteBatch b;
  b.add_task(task("a"));
  first->write(b);
  EXPECT_TRUE(std::filesystem::exists(env.file() + "-lock"));
  // A second server on the same data directory fails to start, with the cause.
  try {
    SqliteStore second(env.file(), SqliteOptions{.busy_timeout_ms = 50, .checkpoint = {}});
    FAIL() << "a second store on the same file should be refused";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot open sqlite store at " + env.file() +
                                         ": database is locked (another process has it open: is another "
                                         "server using this data directory?)");
  }
  // (Other processes are kept off too: tests/e2e/test_durability.py.)
  // The first one goes on undisturbed; once it is closed, a store may open the file.
  b.add_task(task("b"));
  first->write(b);
  EXPECT_EQ(first->counts(), (StoreCounts{2, 0, 0}));
  first.reset();
  EXPECT_EQ(SqliteStore(env.file()).counts(), (StoreCounts{2, 0, 0}));
}

// Under writes that never pause, the WAL is copied back on the checkpointer's thread and
// started over: it stays near catch_up_pages (not one checkpoint per commit, not without
// end). The thresholds are tiny so that a few hundred commits go round several times.
TEST(SqliteStore, UnderSteadyWritesTheWalStaysBounded) {
  SqliteEnv env;
  const CheckpointPages pages{.start_pages = 8, .step_pages = 4, .catch_up_pages = 64};
  SqliteStore store(env.file(), SqliteOptions{.busy_timeout_ms = 5000, .checkpoint = pages});
  const std::string wal = env.file() + "-wal";
  const std::string pad(2000, 'p');
  std::uintmax_t biggest = 0;
  int n = 0;
  for (int commit = 0; commit < 300; ++commit) {
    WriteBatch b;
    for (int i = 0; i < 8; ++i) {
      StoredTask t = task("t" + std::to_string(n++));
      t.task_data_json = R"({"text":")" + pad + R"("})";
      b.add_task(std::move(t));
    }
    store.write(b);
    biggest = std::max(biggest, std::filesystem::file_size(wal));
  }
  EXPECT_EQ(store.counts(), (StoreCounts{2400, 0, 0}));
  // ~16 KB of rows per commit (~6 pages with the B-tree pages it touches): 300 commits
  // wrote ~1,800 pages in all. A WAL frame is a 4 KiB page plus a 24-byte header.
  const std::uintmax_t frame = 4096 + 24;
  EXPECT_LE(biggest, (pages.catch_up_pages + 16) * frame + 32) << "the WAL was not started over";
}

TEST(SqliteStore, CommittedWritesSurviveAProcessKilledWithoutClosing) {
  SqliteEnv env;
  env.open();  // schema in place before the fork
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child writes and dies by SIGKILL: no destructor, no checkpoint, WAL left as is.
    SqliteStore store(env.file());
    WriteBatch b;
    b.add_task(task("survivor"));
    b.start("survivor", 1);
    b.finish(StoredResult{"finished", R"({"type":"RESULT"})", 5});
    store.write(b);
    kill(getpid(), SIGKILL);
    _exit(1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  SqliteStore store(env.file());
  StoredTask survivor = task("survivor");
  survivor.attempt = 1;
  EXPECT_EQ(store.load_unfinished(),
            std::vector<TaskRecord>{(TaskRecord{survivor, TaskState::running})});
  EXPECT_EQ(store.find_result("finished"), (StoredResult{"finished", R"({"type":"RESULT"})", 5}));
}

}  // namespace
}  // namespace sd::store::testing
