#include "client/batch_runner.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"

namespace sd::client {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

/// A one-connection server on 127.0.0.1 that answers each message with whatever the
/// test's responder returns (encoded messages, possibly none or several; kClose closes
/// the connection instead).
/// It reads and writes on its own thread, blocking; the client under test must keep
/// reading while it writes or the two would deadlock on full socket buffers.
constexpr std::string_view kClose = "\x04";

class FakeServer {
 public:
  using Responder = std::function<std::string(const proto::Message&)>;

  explicit FakeServer(Responder responder)
      : responder_(std::move(responder)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeServer() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    thread_.join();
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::size_t tasks_seen() const { return tasks_seen_.load(); }
  [[nodiscard]] std::optional<std::string> first_token() const {
    std::lock_guard lock(mutex_);
    return first_token_;
  }

  ConnectOptions options(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    ConnectOptions o;
    o.host = "127.0.0.1";
    o.port = port_;
    o.timeout = timeout;
    return o;
  }

 private:
  void serve() {
    boost::system::error_code ec;
    tcp::socket socket(io_);
    acceptor_.accept(socket, ec);
    if (ec) return;
    proto::FrameDecoder decoder;
    std::vector<char> buf(64 * 1024);
    for (;;) {
      const std::size_t n = socket.read_some(asio::buffer(buf), ec);
      if (ec) return;  // the client closed: the test is over
      decoder.feed(std::string_view(buf.data(), n));
      std::string out;
      for (proto::Frame f = decoder.next(); f.kind == proto::Frame::Kind::message; f = decoder.next()) {
        auto decoded = proto::decode(f.text);
        auto* env = std::get_if<proto::Envelope>(&decoded);
        ASSERT_NE(env, nullptr) << f.text;
        if (std::holds_alternative<proto::TaskMsg>(env->message)) ++tasks_seen_;
        if (!seen_any_) {
          seen_any_ = true;
          std::lock_guard lock(mutex_);
          first_token_ = env->token;
        }
        const std::string reply = responder_(env->message);
        if (reply == kClose) return;  // the socket closes as it goes out of scope
        out += reply;
      }
      if (!out.empty()) asio::write(socket, asio::buffer(out), ec);
      if (ec) return;
    }
  }

  Responder responder_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<std::size_t> tasks_seen_{0};
  bool seen_any_ = false;  // server thread only
  mutable std::mutex mutex_;
  std::optional<std::string> first_token_;
  std::thread thread_;
};

std::string success_for(const proto::TaskMsg& t) {
  proto::ResultMsg r;
  r.task_id = t.task_id;
  r.ok = true;
  r.result = R"({"ok":true})";
  r.worker_id = "worker_1";
  return proto::to_json_line(r);
}

std::string failure_for(const proto::TaskMsg& t, proto::ErrorCode code) {
  proto::ResultMsg r;
  r.task_id = t.task_id;
  r.ok = false;
  r.error_code = code;
  r.error_message = "no";
  return proto::to_json_line(r);
}

/// Answers every TASK with a success and every PING with a PONG.
std::string echo(const proto::Message& m) {
  if (const auto* t = std::get_if<proto::TaskMsg>(&m)) return success_for(*t);
  if (std::holds_alternative<proto::PingMsg>(m)) return proto::to_json_line(proto::PongMsg{});
  if (std::holds_alternative<proto::StatsRequestMsg>(m)) return "{\"type\":\"STATS\",\"queued\":0}\n";
  return {};
}

proto::TaskMsg hash_task(std::size_t i) {
  proto::TaskMsg t;
  t.task_type = "hash";
  t.task_data = R"({"text":"tarea )" + std::to_string(i) + "\"}";
  return t;
}

TEST(ClientBatchRunner, PipelinesEveryTaskAndCountsEachResultOnce) {
  FakeServer server(echo);
  Connection conn(server.options());
  BatchOptions options;
  options.count = 5000;
  options.window = 256;
  std::size_t progress_calls = 0;
  std::size_t last_done = 0;
  const BatchReport r = BatchRunner(conn, options).run(hash_task, [&](const BatchProgress& p) {
    ++progress_calls;
    EXPECT_GE(p.done(), last_done);
    EXPECT_LE(p.sent - p.done(), 256u) << "more than the window in flight";
    last_done = p.done();
  });
  EXPECT_TRUE(r.all_ok());
  EXPECT_EQ(r.completed, 5000u);
  EXPECT_EQ(r.sent, 5000u);
  EXPECT_EQ(r.latency_ms.count, 5000u);
  EXPECT_EQ(server.tasks_seen(), 5000u);
  EXPECT_GE(progress_calls, 1u);
  EXPECT_EQ(last_done, 5000u) << "the last progress call reports the end";
}

TEST(ClientBatchRunner, WholeBatchInFlightWithLargeMessagesDoesNotDeadlock) {
  FakeServer server([](const proto::Message& m) {
    const auto* t = std::get_if<proto::TaskMsg>(&m);
    if (t == nullptr) return std::string();
    proto::ResultMsg r;
    r.task_id = t->task_id;
    r.ok = true;
    r.result = "{\"echo\":\"" + std::string(20000, 'y') + "\"}";  // big answers while we still write
    return proto::to_json_line(r);
  });
  Connection conn(server.options());
  BatchOptions options;
  options.count = 2000;
  options.window = 0;  // all of them
  const BatchReport r = BatchRunner(conn, options).run([](std::size_t) {
    proto::TaskMsg t;
    t.task_type = "reverse";
    t.task_data = "{\"text\":\"" + std::string(20000, 'x') + "\"}";
    return t;
  });
  EXPECT_TRUE(r.all_ok());
  EXPECT_EQ(r.completed, 2000u);
}

TEST(ClientBatchRunner, FailuresAreCountedByCode) {
  FakeServer server([](const proto::Message& m) {
    const auto* t = std::get_if<proto::TaskMsg>(&m);
    if (t == nullptr) return std::string();
    const auto index = std::stoul(t->task_id.substr(t->task_id.rfind('-') + 1));
    if (index % 10 == 0) return failure_for(*t, proto::ErrorCode::invalid_task_data);
    if (index % 10 == 1) {
      proto::ErrorMsg e{proto::ErrorCode::queue_full, "full", t->task_id};
      return proto::to_json_line(e);
    }
    return success_for(*t);
  });
  Connection conn(server.options());
  BatchOptions options;
  options.count = 100;
  const BatchReport r = BatchRunner(conn, options).run(hash_task);
  EXPECT_EQ(r.completed, 80u);
  EXPECT_EQ(r.failed, 20u);
  EXPECT_EQ(r.errors.at("invalid_task_data"), 10u);
  EXPECT_EQ(r.errors.at("queue_full"), 10u);
  EXPECT_EQ(r.first_error, "invalid_task_data: no");
  EXPECT_FALSE(r.all_ok());
}

TEST(ClientBatchRunner, DuplicateAndForeignResultsAreDetected) {
  FakeServer server([](const proto::Message& m) {
    const auto* t = std::get_if<proto::TaskMsg>(&m);
    if (t == nullptr) return std::string();
    std::string out = success_for(*t);
    if (t->task_id.ends_with("-3")) {
      out += success_for(*t);  // answered twice
      proto::TaskMsg other = *t;
      other.task_id = "someone-else-1";
      out += success_for(other);
    }
    return out;
  });
  Connection conn(server.options());
  BatchOptions options;
  options.count = 10;
  const BatchReport r = BatchRunner(conn, options).run(hash_task);
  EXPECT_EQ(r.completed, 10u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.unexpected, 1u);
  EXPECT_FALSE(r.all_ok());
}

TEST(ClientBatchRunner, UnansweredTasksAreLostAfterTheIdleTimeout) {
  FakeServer server([](const proto::Message& m) {
    const auto* t = std::get_if<proto::TaskMsg>(&m);
    if (t == nullptr || t->task_id.ends_with("-7")) return std::string();
    return success_for(*t);
  });
  Connection conn(server.options());
  BatchOptions options;
  options.count = 20;
  options.idle_timeout = std::chrono::milliseconds(200);
  const BatchReport r = BatchRunner(conn, options).run(hash_task);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.completed, 19u);
  EXPECT_EQ(r.lost, 1u);
}

TEST(ClientBatchRunner, ServerClosingMidBatchIsAConnectionError) {
  FakeServer server([](const proto::Message& m) {
    const auto* t = std::get_if<proto::TaskMsg>(&m);
    if (t != nullptr && t->task_id.ends_with("-50")) return std::string(kClose);
    return echo(m);
  });
  Connection conn(server.options());
  BatchOptions options;
  options.count = 100;
  try {
    BatchRunner(conn, options).run(hash_task);
    FAIL() << "the batch cannot finish";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::lost) << e.what();
  }
}

TEST(ClientApi, RunReturnsTheResultOfItsTask) {
  FakeServer server(echo);
  Client client(server.options());
  const proto::ResultMsg r = client.run("hash", R"({"text":"a"})");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.result, R"({"ok":true})");
  EXPECT_NE(client.last_raw().find("\"type\":\"RESULT\""), std::string::npos);
}

TEST(ClientApi, ResultsArrivingOutOfOrderAreKeptForTheirTask) {
  std::vector<proto::TaskMsg> held;
  FakeServer server([&](const proto::Message& m) {
    const auto* t = std::get_if<proto::TaskMsg>(&m);
    if (t == nullptr) return std::string();
    held.push_back(*t);
    if (held.size() < 3) return std::string();
    return success_for(held[2]) + failure_for(held[1], proto::ErrorCode::timeout) + success_for(held[0]);
  });
  Client client(server.options());
  const std::string a = client.submit(hash_task(0));
  const std::string b = client.submit(hash_task(1));
  const std::string c = client.submit(hash_task(2));
  EXPECT_NE(a, b);
  EXPECT_TRUE(client.wait_result(a, std::chrono::seconds(5)).ok);
  const proto::ResultMsg rb = client.wait_result(b, std::chrono::seconds(5));
  EXPECT_FALSE(rb.ok);
  EXPECT_EQ(rb.error_code, proto::ErrorCode::timeout);
  EXPECT_TRUE(client.wait_result(c, std::chrono::seconds(5)).ok);
}

TEST(ClientApi, AnErrorNamingTheTaskBecomesAFailedResult) {
  FakeServer server([](const proto::Message& m) {
    const auto* t = std::get_if<proto::TaskMsg>(&m);
    if (t == nullptr) return std::string();
    return proto::to_json_line(proto::ErrorMsg{proto::ErrorCode::duplicate_task_id, "dup", t->task_id});
  });
  Client client(server.options());
  const proto::ResultMsg r = client.run("hash", "{}");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, proto::ErrorCode::duplicate_task_id);
  EXPECT_EQ(r.error_message, "dup");
}

TEST(ClientApi, NoAnswerIsATimeoutError) {
  FakeServer server([](const proto::Message&) { return std::string(); });
  Client client(server.options());
  try {
    client.run("hash", "{}", std::chrono::milliseconds(50));
    FAIL() << "expected a timeout";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::timeout);
    EXPECT_EQ(std::string(e.what()).rfind("timeout: sin respuesta de 127.0.0.1:", 0), 0u) << e.what();
  }
}

TEST(ClientApi, StatsAndPing) {
  FakeServer server(echo);
  Client client(server.options());
  EXPECT_EQ(client.stats(), R"({"type":"STATS","queued":0})");
  EXPECT_GE(client.ping().count(), 0);
}

TEST(ClientApi, TaskIdsAreUniqueAcrossGenerators) {
  TaskIdGenerator a;
  TaskIdGenerator b;
  EXPECT_EQ(a.prefix().size(), 12u);
  EXPECT_NE(a.prefix(), b.prefix());
  EXPECT_EQ(a.next(), a.prefix() + "-1");
  EXPECT_EQ(a.next(), a.prefix() + "-2");
}

TEST(ClientConnection, RefusedConnectionIsAOneLineConnectError) {
  std::uint16_t port = 0;
  {
    asio::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }  // closed again: nobody listens there now
  ConnectOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  try {
    Connection conn(o);
    FAIL() << "connected to a closed port";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::connect);
    EXPECT_EQ(std::string(e.what()), "no se pudo conectar a 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  }
}

TEST(ClientConnection, TokenIsSentInAFirstPing) {
  FakeServer server(echo);
  ConnectOptions o = server.options();
  o.token = "s3cr\"eto";
  Client client(o);
  EXPECT_TRUE(client.run("hash", "{}").ok);
  EXPECT_EQ(server.first_token(), "s3cr\"eto");
}

TEST(ClientConnection, WithoutTokenNoPingIsSent) {
  FakeServer server(echo);
  Client client(server.options());
  EXPECT_TRUE(client.run("hash", "{}").ok);
  EXPECT_EQ(server.first_token(), std::nullopt);
}

TEST(ClientConnection, RefusedTokenIsUnauthorized) {
  FakeServer server([](const proto::Message& m) {
    if (std::holds_alternative<proto::PingMsg>(m)) {
      return proto::to_json_line(proto::ErrorMsg{proto::ErrorCode::unauthorized, "bad token", {}});
    }
    return std::string();
  });
  ConnectOptions o = server.options();
  o.token = "wrong";
  try {
    Connection conn(o);
    FAIL() << "a refused token must not connect";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unauthorized);
    EXPECT_EQ(std::string(e.what()), "no autorizado: bad token");
  }
}

}  // namespace
}  // namespace sd::client
