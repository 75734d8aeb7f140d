#include "store/postgres_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdlib>

#include "store/batch_plan.hpp"
#include "store/migrations.hpp"
#include "store/store_uri.hpp"

namespace sd::store {
namespace {

// Columns of sd_tasks in the order every statement below writes and reads them.
#define SD_TASK_COLUMNS                                                                \
  "task_id, task_type, task_data, priority, timeout_ms, max_retries, attempt, async, " \
  "created_at_ms, seq, state, result, finished_at_ms"
constexpr int kColumnCount = 13;

// Rows arrive as one array per column; unnest() zips them back into rows, so a batch of
// any size is one statement.
#define SD_UNNEST_ROWS                                                                     \
  "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::bigint[], " \
  "$6::integer[], $7::bigint[], $8::boolean[], $9::bigint[], $10::bigint[], "              \
  "$11::smallint[], $12::text[], $13::bigint[])"

// Serialises schema migrations of every server opening the same database at once.
constexpr const char* kMigrationLockSql = "SELECT pg_advisory_xact_lock(5928493104227770371)";

struct Prepared {
  const char* name;
  const char* sql;
};
constexpr Prepared kUpsert{
    "sd_upsert",
    "INSERT INTO sd_tasks (" SD_TASK_COLUMNS ") " SD_UNNEST_ROWS
    " ON CONFLICT (task_id) DO UPDATE SET task_type = EXCLUDED.task_type,"
    " task_data = EXCLUDED.task_data, priority = EXCLUDED.priority,"
    " timeout_ms = EXCLUDED.timeout_ms, max_retries = EXCLUDED.max_retries,"
    " attempt = EXCLUDED.attempt, async = EXCLUDED.async,"
    " created_at_ms = EXCLUDED.created_at_ms, seq = EXCLUDED.seq, state = EXCLUDED.state,"
    " result = EXCLUDED.result, finished_at_ms = EXCLUDED.finished_at_ms"};
constexpr Prepared kFinish{
    "sd_finish", "INSERT INTO sd_tasks (" SD_TASK_COLUMNS ") " SD_UNNEST_ROWS
                 " ON CONFLICT (task_id) DO UPDATE SET state = 2, result = EXCLUDED.result,"
                 " finished_at_ms = EXCLUDED.finished_at_ms"};
constexpr Prepared kUpdate{
    "sd_update",
    "UPDATE sd_tasks AS t SET state = u.state, attempt = COALESCE(u.attempt, t.attempt)"
    " FROM unnest($1::text[], $2::smallint[], $3::bigint[]) AS u (task_id, state, attempt)"
    " WHERE t.task_id = u.task_id AND t.state < 2"};
constexpr Prepared kDelete{"sd_delete", "DELETE FROM sd_tasks WHERE task_id = ANY ($1::text[])"};
constexpr Prepared kLoad{"sd_load", "SELECT " SD_TASK_COLUMNS
                                    " FROM sd_tasks WHERE state < 2"
                                    " ORDER BY priority DESC, created_at_ms, seq"};
constexpr Prepared kFindTask{"sd_find_task",
                             "SELECT " SD_TASK_COLUMNS " FROM sd_tasks WHERE task_id = $1"};
constexpr Prepared kFindResult{"sd_find_result",
                               "SELECT result, finished_at_ms FROM sd_tasks"
                               " WHERE task_id = $1 AND state = 2"};
constexpr Prepared kPurge{"sd_purge",
                          "DELETE FROM sd_tasks WHERE task_id IN (SELECT task_id FROM sd_tasks"
                          " WHERE state = 2 AND finished_at_ms < $1::bigint"
                          " ORDER BY finished_at_ms, seq LIMIT $2::bigint)"};
constexpr Prepared kCounts{"sd_counts", "SELECT state, count(*) FROM sd_tasks GROUP BY state"};
constexpr Prepared kListDone{"sd_list_done",
                             "SELECT task_id, finished_at_ms FROM sd_tasks WHERE state = 2"
                             " ORDER BY finished_at_ms, seq"};
constexpr Prepared kMaxSeq{"sd_max_seq",
                           "SELECT COALESCE(MAX(seq), 0) FROM sd_tasks WHERE state < 2"};
constexpr std::array kAllPrepared{kUpsert,   kFinish,     kUpdate, kDelete, kLoad,
                                  kFindTask, kFindResult, kPurge,  kCounts, kListDone, kMaxSeq};

struct ResultClear {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultClear>;
struct ConnFinish {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, ConnFinish>;

// The connection is gone: reconnect, and the call may be retried.
struct ConnectionLost : StoreError {
  using StoreError::StoreError;
};

// libpq's messages span lines ("...failed: Connection refused\n\tIs the server
// running...?\n"); a StoreError is one line.
std::string one_line(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(pos, end - pos);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (!line.empty()) {
      if (!out.empty()) out += "; ";
      out += line;
    }
    pos = end + 1;
  }
  return out.empty() ? std::string("unknown error") : out;
}

// The server's message for a failed statement, without libpq's "ERROR:  " decoration.
std::string error_of(const PGresult* r) {
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  if (primary == nullptr) return one_line(PQresultErrorMessage(r));
  std::string out = one_line(primary);
  if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) {
    out += " (" + one_line(detail) + ")";
  }
  return out;
}

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A PostgreSQL array literal in text form: {"a","b\"c",NULL}. Every text element is
// quoted, with '"' and '\' escaped, so no content can break out of its element.
class ArrayLiteral {
 public:
  void text(std::string_view v) {
    separate();
    s_ += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') s_ += '\\';
      s_ += c;
    }
    s_ += '"';
  }
  void integer(std::int64_t v) {
    separate();
    s_ += std::to_string(v);
  }
  void optional(std::optional<std::int64_t> v) { v ? integer(*v) : null(); }
  void boolean(bool v) {
    separate();
    s_ += v ? 't' : 'f';
  }
  void null() {
    separate();
    s_ += "NULL";
  }
  std::string take() && {
    s_ += '}';
    return std::move(s_);
  }

 private:
  void separate() {
    if (s_.size() > 1) s_ += ',';
  }
  std::string s_ = "{";
};

using Params = std::vector<std::optional<std::string>>;

// The 13 column arrays of a set of rows (for kUpsert and kFinish).
class RowArrays {
 public:
  void add(const StoredTask& t, std::uint32_t attempt, TaskState state, const StoredResult* result,
           std::int64_t seq) {
    cols_[0].text(t.task_id);
    cols_[1].text(t.task_type);
    cols_[2].text(t.task_data_json);
    cols_[3].integer(t.priority);
    cols_[4].optional(t.timeout_ms);
    cols_[5].integer(t.max_retries);
    cols_[6].integer(attempt);
    cols_[7].boolean(t.async);
    cols_[8].integer(t.created_at_ms);
    cols_[9].integer(seq);
    cols_[10].integer(static_cast<std::int64_t>(state));
    if (result) {
      cols_[11].text(result->result_message_json);
      cols_[12].integer(result->finished_at_ms);
    } else {
      cols_[11].null();
      cols_[12].null();
    }
  }
  Params take() && {
    Params p;
    for (auto& c : cols_) p.emplace_back(std::move(c).take());
    return p;
  }

 private:
  std::array<ArrayLiteral, kColumnCount> cols_;
};

struct Call {
  const char* name;
  Params params;
};

std::int64_t int64_at(const PGresult* r, int row, int col) {
  const char* v = PQgetvalue(r, row, col);
  const char* end = v + PQgetlength(r, row, col);
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v, end, out);
  if (ec != std::errc() || p != end) {
    throw StoreError("unexpected value '" + std::string(v, end) + "' in column " + PQfname(r, col));
  }
  return out;
}

std::string text_at(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

// Reads a row of SD_TASK_COLUMNS.
TaskRecord record_at(const PGresult* r, int row) {
  StoredTask t;
  t.task_id = text_at(r, row, 0);
  t.task_type = text_at(r, row, 1);
  t.task_data_json = text_at(r, row, 2);
  t.priority = static_cast<int>(int64_at(r, row, 3));
  if (!PQgetisnull(r, row, 4)) t.timeout_ms = int64_at(r, row, 4);
  t.max_retries = static_cast<int>(int64_at(r, row, 5));
  t.attempt = static_cast<std::uint32_t>(int64_at(r, row, 6));
  t.async = PQgetvalue(r, row, 7)[0] == 't';
  t.created_at_ms = int64_at(r, row, 8);
  return TaskRecord{std::move(t), detail::state_from_column(int64_at(r, row, 10))};
}

}  // namespace

struct PostgresStore::Impl {
  std::string uri;
  PostgresOptions options;
  std::string display;  // no password, ever
  PgConn conn;
  std::int64_t next_seq = 1;

  Impl(std::string u, PostgresOptions o)
      : uri(std::move(u)), options(std::move(o)), display(redact_uri(uri)) {
    try {
      connect();
    } catch (const StoreError& e) {
      throw StoreError("cannot open postgres store at " + display + ": " + e.what());
    }
  }

  std::string context(std::string_view what) const {
    return "postgres store at " + display + ": " + std::string(what) + " failed: ";
  }

  [[noreturn]] void fail(std::string_view what, const std::exception& e) const {
    throw StoreError(context(what) + e.what());
  }

  // Throws ConnectionLost if the connection is gone, StoreError otherwise.
  [[noreturn]] void failure(std::string cause) {
    if (cause.empty()) cause = one_line(PQerrorMessage(conn.get()));
    if (PQstatus(conn.get()) == CONNECTION_BAD) throw ConnectionLost(cause);
    throw StoreError(cause);
  }

  PgResult check(PGresult* raw) {
    PgResult r(raw);
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
    failure(r ? error_of(r.get()) : std::string());
  }

  PgResult exec(std::string_view sql) {
    return check(PQexec(conn.get(), std::string(sql).c_str()));
  }

  PgResult run(const char* name, const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    return check(PQexecPrepared(conn.get(), name, static_cast<int>(values.size()), values.data(),
                                nullptr, nullptr, 0));
  }

  void connect() {
    conn.reset();
    const std::string timeout = std::to_string(options.connect_timeout_s);
    // Entries before dbname are defaults the URI may override; entries after it win.
    const std::array<const char*, 5> keys{"connect_timeout", "application_name", "dbname",
                                          "client_encoding", nullptr};
    const std::array<const char*, 5> values{timeout.c_str(), options.application_name.c_str(),
                                            uri.c_str(), "UTF8", nullptr};
    PgConn c(PQconnectdbParams(keys.data(), values.data(), 1));
    if (!c) throw StoreError("out of memory");
    if (PQstatus(c.get()) != CONNECTION_OK) throw StoreError(one_line(PQerrorMessage(c.get())));
    PQsetNoticeProcessor(
        c.get(), [](void*, const char*) {}, nullptr);  // "already exists, skipping"
    conn = std::move(c);
    try {
      migrate();
      for (const Prepared& p : kAllPrepared)
        check(PQprepare(conn.get(), p.name, p.sql, 0, nullptr));
      const PgResult r = run(kMaxSeq.name, {});
      next_seq = std::max(next_seq, int64_at(r.get(), 0, 0) + 1);
    } catch (...) {
      conn.reset();
      throw;
    }
    std::string host = PQhost(conn.get());
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    display = std::string("postgresql://") + PQuser(conn.get()) + "@" + host + ":" +
              PQport(conn.get()) + "/" + PQdb(conn.get());
  }

  void migrate() {
    exec("BEGIN");
    try {
      exec(kMigrationLockSql);
      exec(schema_version_table_sql(SqlDialect::postgres));
      const PgResult v = exec("SELECT COALESCE(MAX(version), 0) FROM sd_schema_version");
      const int current = static_cast<int>(int64_at(v.get(), 0, 0));
      for (const Migration& m : pending_migrations(SqlDialect::postgres, current)) {
        exec(m.sql);
        const std::string version = std::to_string(m.version);
        const std::string description(m.description);
        const std::string applied = std::to_string(now_ms());
        const std::array<const char*, 3> values{version.c_str(), description.c_str(),
                                                applied.c_str()};
        check(PQexecParams(conn.get(),
                           "INSERT INTO sd_schema_version (version, description, applied_at_ms)"
                           " VALUES ($1, $2, $3)",
                           3, nullptr, values.data(), nullptr, nullptr, 0));
      }
      exec("COMMIT");
    } catch (...) {
      if (PQstatus(conn.get()) == CONNECTION_OK &&
          PQtransactionStatus(conn.get()) != PQTRANS_IDLE) {
        PQclear(PQexec(conn.get(), "ROLLBACK"));
      }
      throw;
    }
  }

  void ensure_connected() {
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK) connect();
  }

  // Runs `f` on a live connection. If the connection turns out to be broken, reconnects
  // and runs `f` once more: every caller's `f` is idempotent.
  template <class F>
  auto call(std::string_view what, F&& f) -> decltype(f()) {
    for (int attempt = 0;; ++attempt) {
      try {
        ensure_connected();
        return f();
      } catch (const ConnectionLost& e) {
        conn.reset();
        if (attempt > 0) fail(what, e);
      } catch (const StoreError& e) {
        fail(what, e);
      }
    }
  }

  // BEGIN; calls...; COMMIT as one pipeline: one round trip for the whole transaction.
  void transaction(const std::vector<Call>& calls) {
    PGconn* c = conn.get();
    if (PQenterPipelineMode(c) != 1) failure({});
    const auto send_plain = [c](const char* sql) {
      return PQsendQueryParams(c, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    };
    std::vector<std::vector<const char*>> values(calls.size());
    bool sent = send_plain("BEGIN");
    for (std::size_t i = 0; sent && i < calls.size(); ++i) {
      for (const auto& p : calls[i].params) values[i].push_back(p ? p->c_str() : nullptr);
      sent = PQsendQueryPrepared(c, calls[i].name, static_cast<int>(values[i].size()),
                                 values[i].data(), nullptr, nullptr, 0) == 1;
    }
    sent = sent && send_plain("COMMIT") && PQpipelineSync(c) == 1;
    if (!sent) {
      // Half a pipeline on the wire: this connection cannot be trusted any more.
      const std::string cause = one_line(PQerrorMessage(c));
      conn.reset();
      throw ConnectionLost(cause);
    }

    // Each statement yields one result then a NULL; the sync yields PGRES_PIPELINE_SYNC.
    // After an error the rest come back PGRES_PIPELINE_ABORTED.
    std::string first_error;
    bool lost = false;
    const std::size_t statements = calls.size() + 2;
    for (std::size_t i = 0; i < statements && !lost; ++i) {
      PgResult r(PQgetResult(c));
      if (!r) {
        lost = true;
        break;
      }
      if (PQresultStatus(r.get()) == PGRES_FATAL_ERROR && first_error.empty()) {
        first_error = error_of(r.get());
      }
      if (PQstatus(c) == CONNECTION_BAD) lost = true;
      while (!lost) {
        PgResult extra(PQgetResult(c));
        if (!extra) break;
        if (PQstatus(c) == CONNECTION_BAD) lost = true;
      }
    }
    if (!lost) {
      PgResult sync(PQgetResult(c));
      lost = !sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC;
    }
    if (lost || PQexitPipelineMode(c) != 1) {
      std::string cause = first_error.empty() ? one_line(PQerrorMessage(c)) : first_error;
      conn.reset();
      throw ConnectionLost(cause);
    }
    if (!first_error.empty()) {
      if (PQtransactionStatus(c) != PQTRANS_IDLE) exec("ROLLBACK");
      throw StoreError(first_error);
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

    std::vector<Call> calls;
    if (!plan.deletes.empty()) {
      ArrayLiteral ids;
      for (const auto& id : plan.deletes) ids.text(id);
      calls.push_back({kDelete.name, {std::move(ids).take()}});
    }
    if (!plan.upserts.empty()) {
      RowArrays rows;
      for (const auto& r : plan.upserts) {
        rows.add(*r.task, r.attempt, r.state, r.result, base + static_cast<std::int64_t>(r.op_index));
      }
      calls.push_back({kUpsert.name, std::move(rows).take()});
    }
    // A finish's attempt is an update of its own here (on an unfinished row, like the
    // others), run before the finishes.
    const bool finish_attempts =
        std::any_of(plan.finishes.begin(), plan.finishes.end(), [](const auto& f) { return f.attempt.has_value(); });
    if (!plan.updates.empty() || finish_attempts) {
      ArrayLiteral ids, states, attempts;
      for (const auto& u : plan.updates) {
        ids.text(u.task_id);
        states.integer(static_cast<std::int64_t>(u.state));
        attempts.optional(u.attempt ? std::optional<std::int64_t>(*u.attempt) : std::nullopt);
      }
      for (const auto& f : plan.finishes) {
        if (!f.attempt) continue;
        ids.text(f.result->task_id);
        states.integer(static_cast<std::int64_t>(TaskState::running));
        attempts.optional(std::optional<std::int64_t>(*f.attempt));
      }
      calls.push_back(
          {kUpdate.name,
           {std::move(ids).take(), std::move(states).take(), std::move(attempts).take()}});
    }
    if (!plan.finishes.empty()) {
      RowArrays rows;
      for (const auto& f : plan.finishes) {
        const StoredTask placeholder = detail::result_only_task(*f.result);
        rows.add(placeholder, placeholder.attempt, TaskState::done, f.result,
                 base + static_cast<std::int64_t>(f.op_index));
      }
      calls.push_back({kFinish.name, std::move(rows).take()});
    }
    call("write", [&] { transaction(calls); });
  }
};

PostgresStore::PostgresStore(std::string uri, PostgresOptions options)
    : impl_(std::make_unique<Impl>(std::move(uri), std::move(options))) {}

PostgresStore::~PostgresStore() = default;

void PostgresStore::write(const WriteBatch& batch) { impl_->write(batch); }

std::vector<TaskRecord> PostgresStore::load_unfinished() {
  return impl_->call("load_unfinished", [&] {
    const PgResult r = impl_->run(kLoad.name, {});
    std::vector<TaskRecord> out;
    const int n = PQntuples(r.get());
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) out.push_back(record_at(r.get(), i));
    return out;
  });
}

std::optional<StoredResult> PostgresStore::find_result(std::string_view task_id) {
  return impl_->call("find_result", [&]() -> std::optional<StoredResult> {
    const PgResult r = impl_->run(kFindResult.name, {std::string(task_id)});
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return StoredResult{std::string(task_id), text_at(r.get(), 0, 0), int64_at(r.get(), 0, 1)};
  });
}

std::optional<TaskRecord> PostgresStore::find_task(std::string_view task_id) {
  return impl_->call("find_task", [&]() -> std::optional<TaskRecord> {
    const PgResult r = impl_->run(kFindTask.name, {std::string(task_id)});
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return record_at(r.get(), 0);
  });
}

std::int64_t PostgresStore::purge_results_before(std::int64_t finished_before_ms,
                                                 std::int64_t limit) {
  if (limit <= 0) return 0;
  return impl_->call("purge_results_before", [&] {
    const PgResult r =
        impl_->run(kPurge.name, {std::to_string(finished_before_ms), std::to_string(limit)});
    const char* n = PQcmdTuples(r.get());
    return static_cast<std::int64_t>(std::strtoll(n, nullptr, 10));
  });
}

void PostgresStore::for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) {
  impl_->call("for_each_done", [&] {
    const PgResult r = impl_->run(kListDone.name, {});
    for (int i = 0; i < PQntuples(r.get()); ++i) f(text_at(r.get(), i, 0), int64_at(r.get(), i, 1));
    return 0;
  });
}

StoreCounts PostgresStore::counts() {
  return impl_->call("counts", [&] {
    const PgResult r = impl_->run(kCounts.name, {});
    StoreCounts c;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const std::int64_t n = int64_at(r.get(), i, 1);
      switch (detail::state_from_column(int64_at(r.get(), i, 0))) {
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
  });
}

std::string PostgresStore::describe() const { return impl_->display; }

}  // namespace sd::store
