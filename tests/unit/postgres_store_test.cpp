#include "store/postgres_store.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "../store/store_conformance.hpp"
#include "../store/tcp_proxy.hpp"
#include "store/migrations.hpp"

// Tests that need a server read its URI from SD_TEST_PG_URI and skip without it; CI
// starts one with scripts/pg-test-cluster.sh. Each test works in a schema of its own.

namespace sd::store::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance,
                         ::testing::Values(StoreFactory{
                             "Postgres",
                             [] { return test_pg_uri().empty() ? std::string(kNoPgMessage) : ""; },
                             [] { return std::make_unique<PostgresEnv>(test_pg_uri()); }}),
                         factory_name);

#define REQUIRE_PG()                                         \
  do {                                                       \
    if (test_pg_uri().empty()) GTEST_SKIP() << kNoPgMessage; \
  } while (false)

std::string open_error(const std::string& uri) {
  try {
    PostgresStore store(uri);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "(no error)";
}

/// The connection parameters a libpq URI sets (host, port, user, dbname, ...).
std::map<std::string, std::string> conninfo(const std::string& uri) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
  if (opts == nullptr) {
    std::string message = err ? err : "?";
    PQfreemem(err);
    throw std::runtime_error("bad test URI: " + message);
  }
  std::map<std::string, std::string> out;
  for (auto* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out[o->keyword] = o->val;
  }
  PQconninfoFree(opts);
  return out;
}

std::string value_or(const std::map<std::string, std::string>& m, const std::string& key,
                     const std::string& fallback) {
  auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

StoredTask task(const std::string& id) {
  StoredTask t;
  t.task_id = id;
  t.task_type = "hash";
  t.task_data_json = R"({"text":"x"})";
  t.created_at_ms = 1;
  return t;
}

/// A loopback port that refuses connections: bound, never listening.
class RefusingPort {
 public:
  RefusingPort() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot bind a test port");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  std::string port() const { return std::to_string(port_); }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

TEST(PostgresStore, ServerThatIsDownIsReportedInOneLineWithoutPassword) {
  RefusingPort down;
  const std::string message = open_error("postgresql://sd:s3cret@127.0.0.1:" + down.port() + "/sd");
  EXPECT_EQ(message, "cannot open postgres store at postgresql://sd:***@127.0.0.1:" + down.port() +
                         "/sd: connection to server at \"127.0.0.1\", port " + down.port() +
                         " failed: Connection refused; Is the server running on that host and "
                         "accepting TCP/IP connections?");
}

TEST(PostgresStore, UnknownDatabaseIsRefused) {
  REQUIRE_PG();
  const auto info = conninfo(test_pg_uri());
  const std::string uri = "postgresql://" + value_or(info, "user", "postgres") + "@" +
                          value_or(info, "host", "127.0.0.1") + ":" +
                          value_or(info, "port", "5432") + "/sd_no_such_db";
  const std::string message = open_error(uri);
  EXPECT_EQ(message.rfind("cannot open postgres store at " + uri + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("database \"sd_no_such_db\" does not exist"), std::string::npos)
      << message;
}

TEST(PostgresStore, DescribesServerWithoutPassword) {
  REQUIRE_PG();
  PostgresEnv env(test_pg_uri());
  const auto info = conninfo(test_pg_uri());
  EXPECT_EQ(env.open()->describe(),
            "postgresql://" + value_or(info, "user", "?") + "@" + value_or(info, "host", "?") +
                ":" + value_or(info, "port", "5432") + "/" + value_or(info, "dbname", "?"));
}

TEST(PostgresStore, MigrationsAreRecordedOnceAndNewerSchemaIsRefused) {
  REQUIRE_PG();
  PostgresEnv env(test_pg_uri());
  env.open();
  env.open();
  const std::string table = env.schema() + ".sd_schema_version";
  EXPECT_EQ(env.admin().exec("SELECT count(*) FROM " + table),
            std::to_string(migrations(SqlDialect::postgres).size()));
  EXPECT_EQ(env.admin().exec("SELECT max(version) FROM " + table),
            std::to_string(latest_schema_version(SqlDialect::postgres)));

  env.admin().exec("INSERT INTO " + table + " VALUES (999, 'from the future', 0)");
  const std::string message = open_error(env.uri());
  EXPECT_NE(message.find(": the database schema is at version 999, newer than this build knows"),
            std::string::npos)
      << message;
}

TEST(PostgresStore, ReconnectsByItselfAfterItsConnectionIsKilled) {
  REQUIRE_PG();
  PostgresEnv env(test_pg_uri());
  const std::string app = env.schema() + "_app";
  PostgresStore store(with_param(env.uri(), "application_name=" + app));
  WriteBatch b;
  b.add_task(task("a"));
  store.write(b);

  const std::string backends =
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app + "'";
  const std::string old_pid =
      env.admin().exec("SELECT pid FROM pg_stat_activity WHERE application_name = '" + app + "'");
  ASSERT_FALSE(old_pid.empty());
  env.admin().exec("SELECT pg_terminate_backend(" + old_pid + ")");
  // Wait (bounded) until the backend is gone, so the write below meets a dead connection.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (env.admin().exec(backends) != "0") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "backend " << old_pid << " lingers";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  b.clear();
  b.add_task(task("b"));
  b.start("a", 1);
  store.write(b);  // finds the connection dead, reconnects, writes
  EXPECT_EQ(store.counts(), (StoreCounts{1, 1, 0}));
  const std::string new_pid =
      env.admin().exec("SELECT pid FROM pg_stat_activity WHERE application_name = '" + app + "'");
  EXPECT_FALSE(new_pid.empty());
  EXPECT_NE(new_pid, old_pid);
}

TEST(PostgresStore, WriteFailsWhileServerIsDownAndSucceedsOnceItIsBack) {
  REQUIRE_PG();
  PostgresEnv env(test_pg_uri());
  const auto info = conninfo(test_pg_uri());
  TcpProxy proxy(value_or(info, "host", "127.0.0.1"),
                 static_cast<std::uint16_t>(std::stoi(value_or(info, "port", "5432"))));
  proxy.start();
  const std::string proxied = "postgresql://" + value_or(info, "user", "postgres") +
                              "@127.0.0.1:" + std::to_string(proxy.port()) + "/" +
                              value_or(info, "dbname", "postgres") + "?options=-csearch_path%3D" +
                              env.schema();
  PostgresStore store(proxied);
  WriteBatch first;
  first.add_task(task("a"));
  store.write(first);

  proxy.stop();  // the server "goes down": connection reset, new ones refused
  WriteBatch second;
  second.add_task(task("b"));
  second.finish(StoredResult{"a", R"({"type":"RESULT"})", 9});
  const std::string prefix = store.describe() + ": write failed: ";
  try {
    store.write(second);
    FAIL() << "a write with the server down must fail";
  } catch (const StoreError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("postgres store at " + prefix, 0), 0u) << message;
    EXPECT_NE(message.find("Connection refused"), std::string::npos) << message;
  }
  EXPECT_THROW(store.counts(), StoreError);

  proxy.start();  // back up
  store.write(second);
  EXPECT_EQ(store.counts(), (StoreCounts{1, 0, 1}));
  EXPECT_EQ(store.find_result("a"), (StoredResult{"a", R"({"type":"RESULT"})", 9}));
}

TEST(PostgresStore, FailedWriteRollsBackWholeAndStoreStaysUsable) {
  REQUIRE_PG();
  PostgresEnv env(test_pg_uri());
  PostgresStore store(with_param(
      test_pg_uri(), "options=-csearch_path%3D" + env.schema() + "%20-clock_timeout%3D200"));
  WriteBatch first;
  first.add_task(task("a"));
  first.add_task(task("b"));
  store.write(first);

  // Another session holds the table: the batch's second statement times out.
  env.admin().exec("BEGIN");
  env.admin().exec("LOCK TABLE " + env.schema() + ".sd_tasks IN EXCLUSIVE MODE");
  WriteBatch second;
  second.drop("a");
  second.add_task(task("c"));
  second.start("b", 1);
  try {
    store.write(second);
    FAIL() << "the write should time out on the lock";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()), "postgres store at " + store.describe() +
                                         ": write failed: canceling statement due to lock timeout");
  }
  env.admin().exec("COMMIT");

  EXPECT_EQ(store.counts(), (StoreCounts{2, 0, 0}));  // nothing of the batch applied
  EXPECT_EQ(store.find_task("a")->state, TaskState::queued);
  store.write(second);
  EXPECT_EQ(store.counts(), (StoreCounts{1, 1, 0}));
  EXPECT_EQ(store.find_task("a"), std::nullopt);
}

}  // namespace
}  // namespace sd::store::testing
