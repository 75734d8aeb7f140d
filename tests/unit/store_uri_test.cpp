#include "store/store_uri.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../store/store_envs.hpp"
#include "store/task_store.hpp"

namespace sd::store::testing {
namespace {

std::string error_of(std::string_view uri) {
  try {
    open_store(uri);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(StoreUri, ParsesMemory) {
  const StoreUri u = parse_store_uri("memory");
  EXPECT_EQ(u.kind, StoreUri::Kind::memory);
  EXPECT_EQ(u.target, "");
}

TEST(StoreUri, ParsesSqlitePathsAndFileUris) {
  EXPECT_EQ(parse_store_uri("sqlite:/var/lib/sd/sd.db").target, "/var/lib/sd/sd.db");
  EXPECT_EQ(parse_store_uri("sqlite:sd.db").target, "sd.db");
  const StoreUri u = parse_store_uri("sqlite:file:/x/sd.db?mode=ro");
  EXPECT_EQ(u.kind, StoreUri::Kind::sqlite);
  EXPECT_EQ(u.target, "file:/x/sd.db?mode=ro");
}

TEST(StoreUri, ParsesBothPostgresSchemesKeepingTheWholeUri) {
  for (const char* uri : {"postgresql://u:p@h:5432/db?sslmode=disable", "postgres://h/db"}) {
    const StoreUri u = parse_store_uri(uri);
    EXPECT_EQ(u.kind, StoreUri::Kind::postgres);
    EXPECT_EQ(u.target, uri);
  }
}

TEST(StoreUri, RejectsUnknownSchemesNamingTheAcceptedOnes) {
  for (const char* uri : {"", "mysql://h/db", "Memory", "sqlite", "redis:x"}) {
    try {
      parse_store_uri(uri);
      ADD_FAILURE() << "accepted '" << uri << "'";
    } catch (const StoreError& e) {
      EXPECT_EQ(std::string(e.what()),
                "unknown store URI '" + std::string(uri) +
                    "'; expected memory, sqlite:PATH or postgresql://user@host:port/db");
    }
  }
}

TEST(StoreUri, RejectsSqliteWithoutPath) { EXPECT_THROW(parse_store_uri("sqlite:"), StoreError); }

TEST(StoreUri, UnknownSchemeMessageHidesPassword) {
  EXPECT_EQ(error_of("mysql://root:hunter2@db/x"),
            "unknown store URI 'mysql://root:***@db/x'; expected memory, sqlite:PATH or "
            "postgresql://user@host:port/db");
}

TEST(StoreUri, RedactsPasswordInUserinfo) {
  EXPECT_EQ(redact_uri("postgresql://sd:s3cret@db.example:5432/sd"),
            "postgresql://sd:***@db.example:5432/sd");
  EXPECT_EQ(redact_uri("postgresql://sd:p%40ss@h"), "postgresql://sd:***@h");
}

TEST(StoreUri, RedactsPasswordQueryParameter) {
  EXPECT_EQ(redact_uri("postgresql://h/db?user=sd&password=s3cret&sslmode=require"),
            "postgresql://h/db?user=sd&password=***&sslmode=require");
  EXPECT_EQ(redact_uri("postgresql://h/db?password=s3cret"), "postgresql://h/db?password=***");
}

TEST(StoreUri, LeavesUrisWithoutPasswordAlone) {
  for (const char* uri : {"postgresql://sd@127.0.0.1:5432/sd_test", "postgresql://h:5432/db",
                          "postgresql://[::1]:5432/db", "sqlite:/x/sd.db", "memory",
                          "postgresql://h/db?application_name=nopassword=x"}) {
    EXPECT_EQ(redact_uri(uri), uri);
  }
}

TEST(OpenStore, MemoryUriOpensMemoryStore) {
  EXPECT_EQ(open_store("memory")->describe(), "memory");
}

TEST(OpenStore, SqliteUriOpensSqliteStoreAtThatPath) {
  TempDir dir;
  const std::string path = (dir.path() / "sd.db").string();
  auto store = open_store("sqlite:" + path);
  EXPECT_EQ(store->describe(), "sqlite:" + path + " (WAL, synchronous=NORMAL)");
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(OpenStore, PostgresUriOpensPostgresStore) {
  // A port that is bound but not listening refuses connections: a server that is down.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  for (const char* scheme : {"postgresql", "postgres"}) {
    const std::string uri = std::string(scheme) + "://sd:pw@127.0.0.1:" + port + "/sd";
    const std::string message = error_of(uri);
    EXPECT_EQ(message.rfind("cannot open postgres store at " + std::string(scheme) +
                                "://sd:***@127.0.0.1:" + port + "/sd: ",
                            0),
              0u)
        << message;
  }
  ::close(fd);
}

}  // namespace
}  // namespace sd::store::testing
