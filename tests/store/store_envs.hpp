#pragma once
/// Places a store under test lives in: a fresh, empty one per test, removed afterwards.
/// Shared by the store tests (tests/unit/*store*_test.cpp) and the benchmark.

#include <libpq-fe.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include "store/memory_store.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"
#include "store/task_store.hpp"

namespace sd::store::testing {

/// A fresh, empty store location. open() may be called again once the previous store is
/// destroyed, to check what a restart sees.
class StoreEnv {
 public:
  virtual ~StoreEnv() = default;
  virtual std::unique_ptr<TaskStore> open() = 0;
  /// Whether data survives closing the store and opening it again.
  virtual bool persistent() const = 0;
};

/// A temporary folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sd-store-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class MemoryEnv final : public StoreEnv {
 public:
  std::unique_ptr<TaskStore> open() override { return std::make_unique<MemoryStore>(); }
  bool persistent() const override { return false; }
};

class SqliteEnv final : public StoreEnv {
 public:
  std::unique_ptr<TaskStore> open() override { return std::make_unique<SqliteStore>(file()); }
  bool persistent() const override { return true; }
  std::string file() const { return (dir_.path() / "sd.db").string(); }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
};

/// The PostgreSQL server the tests use, from SD_TEST_PG_URI (CI starts one with
/// scripts/pg-test-cluster.sh); empty when unset.
inline std::string test_pg_uri() {
  const char* uri = std::getenv("SD_TEST_PG_URI");
  return uri == nullptr ? std::string() : std::string(uri);
}

inline constexpr const char* kNoPgMessage =
    "SD_TEST_PG_URI is not set; start a server with "
    "`export SD_TEST_PG_URI=$(scripts/pg-test-cluster.sh start /tmp/sd-pg)` to run this test";

/// `uri` with one more query parameter.
inline std::string with_param(const std::string& uri, const std::string& param) {
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + param;
}

/// A plain libpq connection for a test's own checks and sabotage.
class PgAdmin {
 public:
  explicit PgAdmin(const std::string& uri) : conn_(PQconnectdb(uri.c_str())) {
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      throw std::runtime_error(std::string("test cannot connect: ") + PQerrorMessage(conn_.get()));
    }
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);
  }
  /// Runs SQL (no parameters: tests only pass their own constants); throws on error.
  /// Returns the first column of the first row, or "" when there is none.
  std::string exec(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn_.get(), sql.c_str()), &PQclear);
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      throw std::runtime_error("test SQL failed: " + sql + ": " + PQresultErrorMessage(r.get()));
    }
    if (st == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 && PQnfields(r.get()) > 0) {
      return PQgetvalue(r.get(), 0, 0);
    }
    return {};
  }

 private:
  struct Finish {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Finish> conn_;
};

/// A schema of its own in the test database, first in the store's search_path, so
/// tests running at the same time (ctest -j) never see each other's rows.
class PostgresEnv final : public StoreEnv {
 public:
  explicit PostgresEnv(std::string base_uri) : base_uri_(std::move(base_uri)), admin_(base_uri_) {
    std::random_device rd;
    std::mt19937_64 rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                        static_cast<std::uint64_t>(getpid()));
    schema_ = "sd_test_" + std::to_string(rng() % 1000000000000ULL);
    admin_.exec("CREATE SCHEMA " + schema_);
    uri_ = with_param(base_uri_, "options=-csearch_path%3D" + schema_);
  }
  ~PostgresEnv() override {
    try {
      admin_.exec("DROP SCHEMA " + schema_ + " CASCADE");
    } catch (...) {
    }
  }
  std::unique_ptr<TaskStore> open() override { return std::make_unique<PostgresStore>(uri_); }
  bool persistent() const override { return true; }
  const std::string& uri() const { return uri_; }
  const std::string& schema() const { return schema_; }
  PgAdmin& admin() { return admin_; }

 private:
  std::string base_uri_;
  PgAdmin admin_;
  std::string schema_;
  std::string uri_;
};

}  // namespace sd::store::testing
