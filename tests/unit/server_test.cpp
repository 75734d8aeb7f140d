// The server's answers while its store fails and a retried write is under way. The store
// is a real SQLite file behind a gate that the test opens, fails or holds shut; the server,
// a real worker and a client talk over 127.0.0.1.

#include "server/server.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/task_store.hpp"
#include "tasks/task_registry.hpp"
#include "worker/worker_runtime.hpp"

namespace sd::server {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;

/// A real store whose writes the test can make fail, or hold until it lets them go.
class GatedStore final : public store::TaskStore {
 public:
  enum class Mode { pass, fail, hold };

  explicit GatedStore(std::unique_ptr<store::TaskStore> inner) : inner_(std::move(inner)) {}

  void set_mode(Mode m) {
    std::lock_guard lock(mu_);
    mode_ = m;
    cv_.notify_all();
  }
  /// Waits (bounded) until a write is held at the gate; false on timeout.
  bool wait_until_held(std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [this] { return held_; });
  }
  /// Waits (bounded) until `n` writes have been made in all; false on timeout.
  bool wait_for_writes(int n, std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return writes_ >= n; });
  }
  [[nodiscard]] int writes() {
    std::lock_guard lock(mu_);
    return writes_;
  }

  void write(const store::WriteBatch& batch) override {
    {
      std::unique_lock lock(mu_);
      if (mode_ == Mode::fail) throw store::StoreError("gate: the store is failing");
      if (mode_ == Mode::hold) {
        held_ = true;
        cv_.notify_all();
        // Bounded, so that a broken test cannot hang the writer thread forever.
        cv_.wait_for(lock, 30s, [this] { return mode_ != Mode::hold; });
        held_ = false;
      }
    }
    inner_->write(batch);
    std::lock_guard lock(mu_);
    ++writes_;
    cv_.notify_all();
  }
  std::vector<store::TaskRecord> load_unfinished() override { return inner_->load_unfinished(); }
  std::optional<store::StoredResult> find_result(std::string_view id) override { return inner_->find_result(id); }
  std::optional<store::TaskRecord> find_task(std::string_view id) override { return inner_->find_task(id); }
  std::int64_t purge_results_before(std::int64_t before_ms, std::int64_t limit) override {
    return inner_->purge_results_before(before_ms, limit);
  }
  void for_each_done(const std::function<void(std::string_view, std::int64_t)>& f) override {
    inner_->for_each_done(f);
  }
  store::StoreCounts counts() override { return inner_->counts(); }
  std::string describe() const override { return "gated " + inner_->describe(); }

 private:
  std::unique_ptr<store::TaskStore> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_ = Mode::pass;
  bool held_ = false;
  int writes_ = 0;
};

/// A client on a blocking socket; every read is bounded.
class LineClient {
 public:
  explicit LineClient(std::uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void send(const std::string& line) { asio::write(socket_, asio::buffer(line + "\n")); }
  /// The next line, or "" after 10 s.
  std::string read_line() {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{socket_.native_handle(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char chunk[4096];
      const ssize_t n = ::recv(socket_.native_handle(), chunk, sizeof chunk, 0);
      if (n <= 0) return {};
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  json::object request(const std::string& line) {
    send(line);
    const std::string reply = read_line();
    EXPECT_FALSE(reply.empty()) << "no reply to " << line;
    return reply.empty() ? json::object{} : json::parse(reply).as_object();
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string buffer_;
};

std::string hash_task(const std::string& id, const std::string& text) {
  return R"({"type":"TASK","task_id":")" + id + R"(","task_type":"hash","task_data":{"text":")" + text + R"("}})";
}

/// A server on a gated SQLite store and one real worker, on an event loop of their own.
class ServerStoreOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sd-server-test-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto gated = std::make_unique<GatedStore>(store::open_store("sqlite:" + (dir_ / "sd.db").string()));
    gate_ = gated.get();
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    server_ = std::make_unique<Server>(io_, o, std::move(gated));
    server_->start();
    worker::WorkerOptions w;
    w.host = "127.0.0.1";
    w.port = server_->port();
    w.threads = 1;
    worker_ = std::make_unique<worker::WorkerRuntime>(io_, w, registry_);
    worker_->start();
    loop_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    gate_->set_mode(GatedStore::Mode::pass);
    if (!released_) release_.set_value();
    asio::post(io_, [this] {
      worker_->stop_now([] {});
      server_->shutdown([this] { io_.stop(); });
    });
    loop_.join();
    worker_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  asio::io_context io_;
  /// The built-in types, and "held": it starts (running_ is set), then waits until the
  /// test sets release_ (at most 20 s).
  tasks::TaskRegistry make_registry() {
    tasks::TaskRegistry r = tasks::builtin_registry();
    r.add("held", [this](const json::object&, const tasks::TaskContext&) {
      running_.set_value();
      release_future_.wait_for(20s);
      return tasks::TaskOutcome::success(R"({"held":true})");
    });
    return r;
  }

  std::promise<void> running_;
  std::promise<void> release_;
  std::shared_future<void> release_future_ = release_.get_future().share();
  tasks::TaskRegistry registry_ = make_registry();
  GatedStore* gate_ = nullptr;
  std::unique_ptr<Server> server_;
  std::unique_ptr<worker::WorkerRuntime> worker_;
  std::thread loop_;
  bool released_ = false;
};

constexpr const char* kHashOfB = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";

std::int64_t stat(const json::object& stats, const char* name) { return stats.at(name).to_number<std::int64_t>(); }

TEST_F(ServerStoreOutage, AResultInTheRetriedWriteIsFoundAndNotRunAgain) {
  LineClient client(server_->port());
  LineClient observer(server_->port());
  EXPECT_EQ(client.request(hash_task("a", "a"))["status"], "success");

  // The store fails: the server answers from memory and keeps the operations.
  gate_->set_mode(GatedStore::Mode::fail);
  const json::object b = client.request(hash_task("b", "b"));
  ASSERT_EQ(b.at("status"), "success") << json::serialize(b);
  EXPECT_EQ(b.at("result").at("hash"), kHashOfB);

  // The retry's write is held at the gate: what it carries, b's result among it, is in
  // neither this round's operations nor those kept for the next try.
  gate_->set_mode(GatedStore::Mode::hold);
  ASSERT_TRUE(gate_->wait_until_held(10s)) << "the server never retried the write";
  // One read for the server: b's result asked for, b sent again, and a new task c.
  client.send(std::string(R"({"type":"GET_RESULT","task_id":"b"})") + "\n" + hash_task("b", "b") + "\n" +
              hash_task("c", "c"));
  // Replies wait for the write under way; STATS on another connection does not. Once c
  // is accepted, the server has handled the three.
  json::object stats;
  for (const auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
    stats = observer.request(R"({"type":"STATS"})");
    if (stat(stats, "accepted") >= 3) break;
  }
  EXPECT_EQ(stat(stats, "accepted"), 3) << "b was accepted to run again: " << json::serialize(stats);

  gate_->set_mode(GatedStore::Mode::pass);
  const json::object got = json::parse(client.read_line()).as_object();
  EXPECT_EQ(got.at("type"), "RESULT") << json::serialize(got);
  EXPECT_EQ(got.at("task_id"), "b");
  EXPECT_EQ(got.at("result").at("hash"), kHashOfB) << json::serialize(got);
  const json::object again = json::parse(client.read_line()).as_object();
  EXPECT_EQ(again.at("task_id"), "b");
  EXPECT_EQ(again.at("result").at("hash"), kHashOfB) << json::serialize(again);
  const json::object c = json::parse(client.read_line()).as_object();
  EXPECT_EQ(c.at("task_id"), "c");
  EXPECT_EQ(c.at("status"), "success") << json::serialize(c);
  stats = observer.request(R"({"type":"STATS"})");
  EXPECT_EQ(stat(stats, "completed"), 3) << "each task ran once: " << json::serialize(stats);
}

TEST_F(ServerStoreOutage, AResultRecordedAfterTheRetriedWriteFindsItsTaskInThatWrite) {
  LineClient client(server_->port());
  LineClient observer(server_->port());
  // The store fails; c is accepted (its record is kept for the retry) and starts.
  gate_->set_mode(GatedStore::Mode::fail);
  client.send(R"({"type":"TASK","task_id":"c","task_type":"held","task_data":{}})");
  ASSERT_EQ(running_.get_future().wait_for(10s), std::future_status::ready) << "c never started";
  // The retry carrying c's acceptance is held; c finishes meanwhile: its result is
  // recorded after that write, its content is in it.
  gate_->set_mode(GatedStore::Mode::hold);
  ASSERT_TRUE(gate_->wait_until_held(10s)) << "the server never retried the write";
  release_.set_value();
  released_ = true;
  json::object stats;
  for (const auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
    stats = observer.request(R"({"type":"STATS"})");
    if (stat(stats, "completed") >= 1) break;
  }
  ASSERT_EQ(stat(stats, "completed"), 1) << json::serialize(stats);
  // c again, and a new task d, in one read: c is answered with its result, not run again.
  client.send(std::string(R"({"type":"TASK","task_id":"c","task_type":"held","task_data":{}})") + "\n" +
              hash_task("d", "b"));
  for (const auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
    stats = observer.request(R"({"type":"STATS"})");
    if (stat(stats, "accepted") >= 2) break;
  }
  EXPECT_EQ(stat(stats, "accepted"), 2) << "c was accepted to run again: " << json::serialize(stats);

  gate_->set_mode(GatedStore::Mode::pass);
  for (int i = 0; i < 2; ++i) {
    const json::object c = json::parse(client.read_line()).as_object();
    EXPECT_EQ(c.at("task_id"), "c") << json::serialize(c);
    EXPECT_EQ(c.at("result"), json::parse(R"({"held":true})")) << json::serialize(c);
  }
  const json::object d = json::parse(client.read_line()).as_object();
  EXPECT_EQ(d.at("task_id"), "d");
  EXPECT_EQ(d.at("result").at("hash"), kHashOfB) << json::serialize(d);
  stats = observer.request(R"({"type":"STATS"})");
  EXPECT_EQ(stat(stats, "completed"), 2) << "each task ran once: " << json::serialize(stats);
}

}  // namespace
}  // namespace sd::server
