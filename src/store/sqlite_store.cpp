#include "store/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <vector>

#include "store/batch_plan.hpp"
#include "store/migrations.hpp"
#include "store/sqlite_checkpointer.hpp"

namespace sd::store {
namespace {

// Columns of sd_tasks in the order every statement below binds and reads them.
#define SD_TASK_COLUMNS                                                                \
  "task_id, task_type, task_data, priority, timeout_ms, max_retries, attempt, async, " \
  "created_at_ms, seq, state, result, finished_at_ms"

constexpr std::int64_t kNoPageCap = 0x3fffffff;  // SQLite's default max_page_count

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// The cause of the last failure on `db`, with the OS error when SQLite saw one
// ("unable to open database file (No such file or directory)").
std::string cause_of(sqlite3* db, std::optional<int> os_error = std::nullopt) {
  if (db == nullptr) return "out of memory";
  std::string cause = sqlite3_errmsg(db);
  const int primary = sqlite3_extended_errcode(db) & 0xff;
  const int sys = os_error.value_or(sqlite3_system_errno(db));
  if (sys != 0 && (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR ||
                   primary == SQLITE_FULL || primary == SQLITE_READONLY)) {
    cause += " (";
    cause += std::strerror(sys);
    cause += ")";
  }
  return cause;
}

// Why `path` cannot be opened for writing, asked of the file system: SQLite retries a
// failed read-write open read-only, so the errno it keeps is often the retry's (ENOENT
// for a file it could not create) rather than the cause (EACCES on the folder).
std::optional<int> open_failure_errno(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    return ::access(path.c_str(), R_OK | W_OK) == 0 ? std::nullopt : std::optional<int>(errno);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  if (::stat(dir.c_str(), &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return errno;
  return std::nullopt;
}

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

/// An open file descriptor, closed with its owner.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// A prepared statement, kept for the life of the connection. Bind indexes are 1-based,
// column indexes 0-based (SQLite's own conventions).
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &raw, nullptr) != SQLITE_OK) {
      throw StoreError(cause_of(db));
    }
    stmt_.reset(raw);
  }

  void bind(int i, std::string_view text) {
    check(
        sqlite3_bind_text64(stmt_.get(), i, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  void bind(int i, std::int64_t value) { check(sqlite3_bind_int64(stmt_.get(), i, value)); }
  void bind(int i, std::optional<std::int64_t> value) {
    check(value ? sqlite3_bind_int64(stmt_.get(), i, *value) : sqlite3_bind_null(stmt_.get(), i));
  }

  /// true: a row is ready; false: done. Throws on error.
  bool step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw StoreError(cause_of(db_));
  }

  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    const int n = sqlite3_column_bytes(stmt_.get(), col);
    return p == nullptr
               ? std::string()
               : std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }

  /// Ready for the next use, holding no lock and no pointer into the caller's strings.
  void reset() noexcept {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
  }

 private:
  void check(int rc) const {
    if (rc != SQLITE_OK) throw StoreError(cause_of(db_));
  }
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
  };
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// Scope of one use of a cached statement: resets it however the scope ends, so an
// exception never leaves a statement mid-step (in WAL, that would pin a read snapshot).
class Use {
 public:
  explicit Use(Statement& s) : s_(s) {}
  ~Use() { s_.reset(); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  Statement* operator->() { return &s_; }

 private:
  Statement& s_;
};

// A purge call looks at this many rows per result it may delete (see purge_results_before).
constexpr std::int64_t kPurgeWindowFactor = 8;

void run(Statement& s) {
  Use use(s);
  while (use->step()) {
  }
}

// Multi-statement SQL without parameters (migrations, pragmas).
void exec(sqlite3* db, std::string_view sql) {
  const std::string text(sql);
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw StoreError(cause_of(db));
  }
}

// Reads columns 0..8 (see SD_TASK_COLUMNS) into a task.
StoredTask read_task(const Statement& s) {
  StoredTask t;
  t.task_id = s.text(0);
  t.task_type = s.text(1);
  t.task_data_json = s.text(2);
  t.priority = static_cast<int>(s.int64(3));
  if (!s.is_null(4)) t.timeout_ms = s.int64(4);
  t.max_retries = static_cast<int>(s.int64(5));
  t.attempt = static_cast<std::uint32_t>(s.int64(6));
  t.async = s.int64(7) != 0;
  t.created_at_ms = s.int64(8);
  return t;
}

}  // namespace

struct SqliteStore::Impl {
  std::string path;     // as given to sqlite3_open_v2
  std::string display;  // absolute path, for messages
  Fd owner_lock;        // "<file>-lock", flock()ed while this store is open; closed last
  bool owned_elsewhere = false;  // another store holds that lock
  DbPtr db;
  std::int64_t next_seq = 1;

  Statement begin, commit, rollback;
  Statement delete_task, upsert, update_state, finish, finish_stored;
  Statement load, find_task, find_result, purge_window, purge_row, counts, list_done, max_seq;
  /// Where the next purge window starts (rowids after it); 0: from the first row.
  std::int64_t purge_after_rowid = 0;
  /// Declared last: stopped (and its connection closed) before `db` closes.
  std::unique_ptr<SqliteCheckpointer> checkpointer;

  Impl(std::string p, const SqliteOptions& options) : path(std::move(p)) {
    display = path;
    if (path.rfind("file:", 0) != 0) {
      std::error_code ec;
      auto abs = std::filesystem::absolute(path, ec);
      if (!ec) display = abs.lexically_normal().string();
    }
    try {
      open(options);
    } catch (const StoreError& e) {
      std::string hint;
      if (owned_elsewhere || (db && (sqlite3_extended_errcode(db.get()) & 0xff) == SQLITE_BUSY)) {
        hint = " (another process has it open: is another server using this data directory?)";
      }
      throw StoreError("cannot open sqlite store at " + display + ": " + e.what() + hint);
    }
  }

  void open(const SqliteOptions& options) {
    // No global memory statistics: they put a mutex on every allocation SQLite makes.
    // Only possible before SQLite initialises; if someone else did, it stays as it is.
    static std::once_flag configured;
    std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    sqlite3* raw = nullptr;
    // "unix-excl": this process takes an exclusive lock on the file at the first access
    // and holds it until its last connection closes, so no other process reads or writes
    // the file meanwhile; and the WAL index lives in this process's memory, shared by its
    // connections (this one and the checkpointer's), instead of in a -shm file that every
    // transaction locks with fcntl() (6 calls per commit, ~12% of a sequential task's
    // time with the default VFS).
    const int rc = sqlite3_open_v2(
        path.c_str(), &raw,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
        "unix-excl");
    db.reset(raw);
    if (rc != SQLITE_OK) {
      const bool plain_path = path.rfind("file:", 0) != 0;
      throw StoreError(cause_of(raw, plain_path && (rc & 0xff) == SQLITE_CANTOPEN
                                         ? open_failure_errno(path)
                                         : std::nullopt));
    }
    sqlite3_extended_result_codes(raw, 1);
    // SQLite silently falls back to read-only when it cannot open for writing; a store
    // that cannot write is useless, so say so now rather than at the first write().
    if (sqlite3_db_readonly(raw, "main") == 1) {
      throw StoreError("attempt to write a readonly database");
    }
    sqlite3_busy_timeout(raw, options.busy_timeout_ms);

    // One server owns its database. The VFS's lock would stop a second one only after
    // busy_timeout_ms; an flock() on "<file>-lock", held while this store is open, makes
    // it fail at once ("database is locked"), before it touches the database. (A lock
    // file rather than the database itself: closing any descriptor of the database would
    // drop SQLite's own POSIX locks on it.)
    const char* file = sqlite3_db_filename(raw, "main");
    const std::string file_name = file != nullptr ? file : "";
    if (file_name.empty()) throw StoreError("needs a database file (not a memory or temporary database)");
    own(file_name + "-lock");
    {
      Statement wal(raw, "PRAGMA journal_mode=WAL");
      Use use(wal);
      const std::string mode = use->step() ? use->text(0) : std::string();
      if (mode != "wal") {
        throw StoreError("cannot use WAL journal mode (journal_mode is '" + mode + "')");
      }
    }
    exec(raw, "PRAGMA synchronous=NORMAL");
    migrate();

    begin = Statement(raw, "BEGIN IMMEDIATE");
    commit = Statement(raw, "COMMIT");
    rollback = Statement(raw, "ROLLBACK");
    delete_task = Statement(raw, "DELETE FROM sd_tasks WHERE task_id = ?1");
    upsert = Statement(raw, "INSERT OR REPLACE INTO sd_tasks (" SD_TASK_COLUMNS
                            ")"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    update_state = Statement(raw,
                             "UPDATE sd_tasks SET state = ?2, attempt = COALESCE(?3, attempt)"
                             " WHERE task_id = ?1 AND state < 2");
    finish = Statement(raw, "INSERT INTO sd_tasks (" SD_TASK_COLUMNS
                            ")"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                            " ON CONFLICT (task_id) DO UPDATE SET state = 2,"
                            " result = excluded.result, finished_at_ms = excluded.finished_at_ms");
    finish_stored = Statement(raw,
                              "UPDATE sd_tasks SET state = 2, result = ?2, finished_at_ms = ?3,"
                              " attempt = CASE WHEN state < 2 THEN COALESCE(?4, attempt) ELSE attempt END"
                              " WHERE task_id = ?1");
    load = Statement(raw, "SELECT " SD_TASK_COLUMNS
                          " FROM sd_tasks WHERE state < 2"
                          " ORDER BY priority DESC, created_at_ms, seq");
    find_task = Statement(raw, "SELECT " SD_TASK_COLUMNS " FROM sd_tasks WHERE task_id = ?1");
    find_result = Statement(raw,
                            "SELECT result, finished_at_ms FROM sd_tasks"
                            " WHERE task_id = ?1 AND state = 2");
    // No index on finish times (see migration 2): the purge looks at a window of rows in
    // rowid order, one window per call, going round the table.
    purge_window = Statement(raw,
                             "SELECT rowid, state, finished_at_ms, seq FROM sd_tasks"
                             " WHERE rowid > ?1 ORDER BY rowid LIMIT ?2");
    purge_row = Statement(raw, "DELETE FROM sd_tasks WHERE rowid = ?1");
    counts = Statement(raw, "SELECT state, count(*) FROM sd_tasks GROUP BY state");
    list_done = Statement(raw,
                          "SELECT task_id, finished_at_ms FROM sd_tasks WHERE state = 2"
                          " ORDER BY finished_at_ms, seq");
    max_seq = Statement(raw, "SELECT COALESCE(MAX(seq), 0) FROM sd_tasks WHERE state < 2");

    Use use(max_seq);
    if (use->step()) next_seq = use->int64(0) + 1;

    // Checkpoints run on a thread of their own (SqliteCheckpointer); this connection's
    // WAL hook (which replaces SQLite's automatic checkpoint) tells it when.
    checkpointer = std::make_unique<SqliteCheckpointer>(file_name, options.checkpoint, options.busy_timeout_ms);
    sqlite3_wal_hook(raw, &Impl::after_commit, this);
  }

  /// Takes the owner's lock at `lock_path`, or throws "database is locked".
  void own(const std::string& lock_path) {
    owner_lock.fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (owner_lock.fd < 0) {
      throw StoreError("cannot create lock file " + lock_path + ": " + std::strerror(errno));
    }
    if (::flock(owner_lock.fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        owned_elsewhere = true;
        throw StoreError("database is locked");
      }
      throw StoreError("cannot lock " + lock_path + ": " + std::strerror(errno));
    }
  }

  /// SQLite's WAL hook: runs after each commit, outside the transaction.
  static int after_commit(void* self, sqlite3*, const char*, int wal_pages) {
    static_cast<Impl*>(self)->checkpointer->after_commit(wal_pages);
    return SQLITE_OK;
  }

  // Applies the missing migrations, all in one transaction; BEGIN IMMEDIATE makes a
  // second process opening the same file at the same time wait, then see them applied.
  void migrate() {
    sqlite3* raw = db.get();
    exec(raw, "BEGIN IMMEDIATE");
    try {
      exec(raw, schema_version_table_sql(SqlDialect::sqlite));
      int current = 0;
      {
        Statement q(raw, "SELECT COALESCE(MAX(version), 0) FROM sd_schema_version");
        Use use(q);
        if (use->step()) current = static_cast<int>(use->int64(0));
      }
      Statement record(raw,
                       "INSERT INTO sd_schema_version (version, description, applied_at_ms)"
                       " VALUES (?1, ?2, ?3)");
      for (const Migration& m : pending_migrations(SqlDialect::sqlite, current)) {
        exec(raw, m.sql);
        Use use(record);
        use->bind(1, std::int64_t{m.version});
        use->bind(2, m.description);
        use->bind(3, now_ms());
        use->step();
      }
      exec(raw, "COMMIT");
    } catch (...) {
      if (sqlite3_get_autocommit(raw) == 0)
        sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::string context(std::string_view what) const {
    return "sqlite store at " + display + ": " + std::string(what) + " failed: ";
  }

  [[noreturn]] void fail(std::string_view what, const std::exception& e) const {
    throw StoreError(context(what) + e.what());
  }

  // Binds without copying (SQLITE_STATIC): every argument must outlive the step.
  static void bind_row(Statement& s, const StoredTask& t, std::uint32_t attempt, TaskState state,
                       const StoredResult* result, std::int64_t seq) {
    s.bind(1, t.task_id);
    s.bind(2, t.task_type);
    s.bind(3, t.task_data_json);
    s.bind(4, std::int64_t{t.priority});
    s.bind(5, t.timeout_ms);
    s.bind(6, std::int64_t{t.max_retries});
    s.bind(7, std::int64_t{attempt});
    s.bind(8, std::int64_t{t.async ? 1 : 0});
    s.bind(9, t.created_at_ms);
    s.bind(10, seq);
    s.bind(11, static_cast<std::int64_t>(state));
    if (result) {
      s.bind(12, result->result_message_json);
      s.bind(13, result->finished_at_ms);
    } else {
      s.bind(12, std::optional<std::int64_t>{});
      s.bind(13, std::optional<std::int64_t>{});
    }
  }

  void apply(const detail::BatchPlan& plan, std::int64_t base) {
    for (std::string_view id : plan.deletes) {
      Use use(delete_task);
      use->bind(1, id);
      use->step();
    }
    for (const detail::PlannedRow& row : plan.upserts) {
      Use use(upsert);
      bind_row(upsert, *row.task, row.attempt, row.state, row.result,
               base + static_cast<std::int64_t>(row.op_index));
      use->step();
    }
    for (const detail::PlannedUpdate& u : plan.updates) {
      Use use(update_state);
      use->bind(1, u.task_id);
      use->bind(2, static_cast<std::int64_t>(u.state));
      use->bind(3, u.attempt ? std::optional<std::int64_t>(*u.attempt) : std::nullopt);
      use->step();
    }
    for (const detail::PlannedFinish& f : plan.finishes) {
      {
        // The task is almost always stored: a plain update, cheaper than an upsert.
        Use use(finish_stored);
        use->bind(1, f.result->task_id);
        use->bind(2, f.result->result_message_json);
        use->bind(3, f.result->finished_at_ms);
        use->bind(4, f.attempt ? std::optional<std::int64_t>(*f.attempt) : std::nullopt);
        use->step();
        if (sqlite3_changes(db.get()) > 0) continue;
      }
      const StoredTask placeholder = detail::result_only_task(*f.result);
      Use use(finish);
      bind_row(finish, placeholder, placeholder.attempt, TaskState::done, f.result,
               base + static_cast<std::int64_t>(f.op_index));
      use->step();
    }
  }

  void write(const WriteBatch& batch) {
    if (batch.empty()) return;
    detail::BatchPlan plan;
    try {
      plan = detail::plan_batch(batch);
    } catch (const InvalidBatchError& e) {
      throw InvalidBatchError(context("write") + e.what());
    }
    const std::int64_t base = next_seq;
    next_seq += static_cast<std::int64_t>(batch.size());
    if (plan.empty()) return;
    try {
      transaction([&] { apply(plan, base); });
    } catch (const StoreError& e) {
      fail("write", e);
    }
  }

  /// Runs `f` in one transaction: committed whole, or rolled back (and rethrown).
  template <class F>
  void transaction(F&& f) {
    run(begin);
    try {
      f();
      run(commit);
    } catch (const StoreError&) {
      // Some errors (SQLITE_FULL, SQLITE_IOERR) roll back by themselves; others leave the
      // transaction open, and the next BEGIN would fail.
      if (sqlite3_get_autocommit(db.get()) == 0) {
        try {
          run(rollback);
        } catch (const StoreError&) {
        }
      }
      throw;
    }
  }
};

SqliteStore::SqliteStore(std::string path, SqliteOptions options)
    : impl_(std::make_unique<Impl>(std::move(path), options)) {}

SqliteStore::~SqliteStore() = default;

void SqliteStore::write(const WriteBatch& batch) { impl_->write(batch); }

std::vector<TaskRecord> SqliteStore::load_unfinished() {
  try {
    std::vector<TaskRecord> out;
    Use use(impl_->load);
    while (use->step())
      out.push_back(TaskRecord{read_task(impl_->load), detail::state_from_column(use->int64(10))});
    return out;
  } catch (const StoreError& e) {
    impl_->fail("load_unfinished", e);
  }
}

std::optional<StoredResult> SqliteStore::find_result(std::string_view task_id) {
  try {
    Use use(impl_->find_result);
    use->bind(1, task_id);
    if (!use->step()) return std::nullopt;
    return StoredResult{std::string(task_id), use->text(0), use->int64(1)};
  } catch (const StoreError& e) {
    impl_->fail("find_result", e);
  }
}

std::optional<TaskRecord> SqliteStore::find_task(std::string_view task_id) {
  try {
    Use use(impl_->find_task);
    use->bind(1, task_id);
    if (!use->step()) return std::nullopt;
    return TaskRecord{read_task(impl_->find_task), detail::state_from_column(use->int64(10))};
  } catch (const StoreError& e) {
    impl_->fail("find_task", e);
  }
}

std::int64_t SqliteStore::purge_results_before(std::int64_t finished_before_ms,
                                               std::int64_t limit) {
  if (limit <= 0) return 0;
  Impl& im = *impl_;
  try {
    // The window: the next kPurgeWindowFactor x limit rows after the last window (from
    // the first row again once the end is reached). Of its done rows that finished
    // before the cutoff, the oldest `limit` go, in one transaction.
    struct Candidate {
      std::int64_t finished_at_ms, seq, rowid;
      auto operator<=>(const Candidate&) const = default;
    };
    std::vector<Candidate> due;
    std::int64_t examined = 0, last_rowid = 0;
    const std::int64_t window = limit * kPurgeWindowFactor;
    {
      Use use(im.purge_window);
      use->bind(1, im.purge_after_rowid);
      use->bind(2, window);
      while (use->step()) {
        ++examined;
        last_rowid = use->int64(0);
        if (use->int64(1) == 2 && !use->is_null(2) && use->int64(2) < finished_before_ms) {
          due.push_back(Candidate{use->int64(2), use->int64(3), last_rowid});
        }
      }
    }
    if (static_cast<std::int64_t>(due.size()) > limit) {
      // More are due here than this call deletes: the next call looks here again.
      std::sort(due.begin(), due.end());
      due.resize(static_cast<std::size_t>(limit));
    } else {
      im.purge_after_rowid = examined < window ? 0 : last_rowid;
    }
    if (due.empty()) return 0;
    im.transaction([&] {
      for (const Candidate& c : due) {
        Use use(im.purge_row);
        use->bind(1, c.rowid);
        use->step();
      }
    });
    return static_cast<std::int64_t>(due.size());
  } catch (const StoreError& e) {
    im.fail("purge_results_before", e);
  }
}

void SqliteStore::for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) {
  try {
    Use use(impl_->list_done);
    while (use->step()) f(use->text(0), use->int64(1));
  } catch (const StoreError& e) {
    impl_->fail("for_each_done", e);
  }
}

StoreCounts SqliteStore::counts() {
  try {
    StoreCounts c;
    Use use(impl_->counts);
    while (use->step()) {
      const std::int64_t n = use->int64(1);
      switch (detail::state_from_column(use->int64(0))) {
        case TaskState::queued:
          c.queued = n;
          break;
        case TaskState::running:
          c.running = n;
          break;
        case TaskState::done:
          c.done = n;
          break;
      }
    }
    return c;
  } catch (const StoreError& e) {
    impl_->fail("counts", e);
  }
}

std::string SqliteStore::describe() const {
  return "sqlite:" + impl_->display + " (WAL, synchronous=NORMAL)";
}

void SqliteStore::set_max_page_count(std::int64_t pages) {
  const std::int64_t n = pages <= 0 ? kNoPageCap : pages;
  try {
    // A PRAGMA takes no bound parameters; n is a number we format, not user text.
    exec(impl_->db.get(), "PRAGMA max_page_count=" + std::to_string(n));
  } catch (const StoreError& e) {
    impl_->fail("set_max_page_count", e);
  }
}

}  // namespace sd::store
