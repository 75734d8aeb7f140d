// WorkerRuntime against a stand-in server on a real loopback socket: which thread runs
// a task (the I/O thread for a tiny task on an idle pool, a pool thread otherwise).
#include "worker/worker_runtime.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include "tasks/task_registry.hpp"

namespace sd::worker {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// Records the thread each task ran on, by task_id.
struct ThreadLog {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, std::thread::id> ran_on;
  void note(const boost::json::object& data) {
    {
      std::lock_guard lock(mutex);
      ran_on[std::string(data.at("id").as_string())] = std::this_thread::get_id();
    }
    changed.notify_all();
  }
  /// Whether all of `ids` ran within `limit`.
  bool wait_for(const std::set<std::string>& ids, std::chrono::seconds limit) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, limit, [&] {
      return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) { return ran_on.count(id) != 0; });
    });
  }
  std::thread::id of(const std::string& id) {
    std::lock_guard lock(mutex);
    return ran_on.at(id);
  }
};

class WorkerRuntimeThreads : public ::testing::Test {
 protected:
  void SetUp() override { SetUpWith(WorkerOptions{}); }

  void SetUpWith(WorkerOptions o) {
    registry_.add(
        "tiny",
        [this](const boost::json::object& d, const tasks::TaskContext&) {
          log_.note(d);
          return tasks::TaskOutcome::success("{}");
        },
        tasks::TaskCost::linear_in_input);
    registry_.add("open_ended", [this](const boost::json::object& d, const tasks::TaskContext&) {
      log_.note(d);
      return tasks::TaskOutcome::success("{}");
    });
    // Holds its pool thread until release_ is set (or 10 s pass).
    registry_.add("blocking", [this](const boost::json::object& d, const tasks::TaskContext&) {
      log_.note(d);
      release_.wait_for(std::chrono::seconds(10));
      return tasks::TaskOutcome::success("{}");
    });
    // Tiny too; waits (at most 10 s) until the server has read some earlier results.
    registry_.add(
        "gate",
        [this](const boost::json::object&, const tasks::TaskContext&) {
          const bool opened = results_out_.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
          return tasks::TaskOutcome::success(opened ? "\"opened\"" : "\"timed out\"");
        },
        tasks::TaskCost::linear_in_input);
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    o.host = "127.0.0.1";
    o.port = acceptor_.local_endpoint().port();
    o.threads = 2;
    runtime_ = std::make_unique<WorkerRuntime>(io_, o, registry_);
    runtime_->start();
    io_thread_ = std::thread([this] { io_.run(); });
    io_id_ = io_thread_.get_id();
    acceptor_.accept(peer_);
    EXPECT_NE(read_line().find("\"WORKER_REGISTER\""), std::string::npos);
    send_line(R"({"type":"REGISTERED","worker_id":"worker_1"})");
  }

  void TearDown() override {
    for (auto* p : {&release_promise_, &results_out_promise_}) {
      try {
        p->set_value();
      } catch (const std::future_error&) {  // already set by the test
      }
    }
    std::promise<void> stopped;
    asio::post(io_, [&] { runtime_->stop_now([&] { stopped.set_value(); }); });
    EXPECT_EQ(stopped.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    io_.stop();
    io_thread_.join();
    runtime_.reset();
  }

  /// The next line from the worker; throws when none comes within 10 s.
  std::string read_line() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      if (const auto nl = in_.find('\n'); nl != std::string::npos) {
        std::string line = in_.substr(0, nl + 1);
        in_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      pollfd p{peer_.native_handle(), POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) throw std::runtime_error("no line from the worker");
      char buf[4096];
      const std::size_t n = peer_.read_some(asio::buffer(buf));
      in_.append(buf, n);
    }
  }
  void send_line(const std::string& s) { asio::write(peer_, asio::buffer(s + "\n")); }
  static std::string task_line(const std::string& id, const std::string& type, const std::string& extra = "") {
    return R"({"type":"TASK","task_id":")" + id + R"(","task_type":")" + type + R"(","task_data":{"id":")" + id +
           "\"" + extra + R"(},"attempt":1})";
  }
  void send_task(const std::string& id, const std::string& type, const std::string& extra = "") {
    send_line(task_line(id, type, extra));
  }

  tasks::TaskRegistry registry_;
  ThreadLog log_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  tcp::socket peer_{io_};
  std::string in_;
  std::unique_ptr<WorkerRuntime> runtime_;
  std::thread io_thread_;
  std::thread::id io_id_;
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::promise<void> results_out_promise_;
  std::shared_future<void> results_out_ = results_out_promise_.get_future().share();
};

TEST_F(WorkerRuntimeThreads, ATinyTaskOnAnIdlePoolRunsOnTheIoThread) {
  send_task("t1", "tiny");
  const std::string reply = read_line();
  EXPECT_NE(reply.find(R"("task_id":"t1")"), std::string::npos) << reply;
  EXPECT_NE(reply.find(R"("status":"success")"), std::string::npos) << reply;
  EXPECT_EQ(log_.of("t1"), io_id_);
}

TEST_F(WorkerRuntimeThreads, AnOpenEndedTaskRunsOnThePool) {
  send_task("o1", "open_ended");
  const std::string reply = read_line();
  EXPECT_NE(reply.find(R"("task_id":"o1")"), std::string::npos) << reply;
  EXPECT_NE(log_.of("o1"), io_id_);
}

TEST_F(WorkerRuntimeThreads, ATinyTypeWithLargeDataRunsOnThePool) {
  send_task("big", "tiny", R"(,"pad":")" + std::string(5000, 'x') + "\"");
  const std::string reply = read_line();
  EXPECT_NE(reply.find(R"("task_id":"big")"), std::string::npos) << reply;
  EXPECT_NE(log_.of("big"), io_id_);
}

TEST_F(WorkerRuntimeThreads, ATinyTaskDoesNotWaitBehindAFullPool) {
  // Both pool threads are held; a tiny task sent after them is answered at once.
  send_task("b1", "blocking");
  send_task("b2", "blocking");
  send_task("t1", "tiny");
  const std::string first = read_line();
  EXPECT_NE(first.find(R"("task_id":"t1")"), std::string::npos) << first;
  EXPECT_EQ(log_.of("t1"), io_id_);
  release_promise_.set_value();
  std::set<std::string> rest;
  for (int i = 0; i < 2; ++i) {
    const std::string line = read_line();
    for (const char* id : {"b1", "b2"}) {
      if (line.find(std::string(R"("task_id":")") + id + "\"") != std::string::npos) rest.insert(id);
    }
  }
  EXPECT_EQ(rest, (std::set<std::string>{"b1", "b2"}));
  EXPECT_NE(log_.of("b1"), io_id_);
  EXPECT_NE(log_.of("b2"), io_id_);
}

TEST_F(WorkerRuntimeThreads, ResultsOfALongRunOfTinyTasksLeaveBeforeItEnds) {
  // One write, so that the worker reads all of them at once and runs them in one go on
  // its I/O thread. The last one waits until results of earlier ones have reached the
  // server: it would wait in vain if results left only at the end of the run.
  constexpr int kBefore = 3 * static_cast<int>(WorkerRuntime::kHereFlushEvery);
  std::string burst;
  for (int i = 0; i < kBefore; ++i) {
    burst += R"({"type":"TASK","task_id":"t)" + std::to_string(i) +
             R"(","task_type":"tiny","task_data":{"id":"t)" + std::to_string(i) + R"("},"attempt":1})" + "\n";
  }
  burst += R"({"type":"TASK","task_id":"g","task_type":"gate","task_data":{},"attempt":1})" "\n";
  asio::write(peer_, asio::buffer(burst));
  std::string gate_reply;
  for (int i = 0; i <= kBefore; ++i) {
    const std::string line = read_line();
    if (i == 0) results_out_promise_.set_value();
    if (line.find(R"("task_id":"g")") != std::string::npos) gate_reply = line;
  }
  EXPECT_NE(gate_reply.find(R"("result":"opened")"), std::string::npos) << gate_reply;
  EXPECT_EQ(log_.of("t0"), io_id_);
}

/// The fixture with reads of 4 KiB, a size any TCP window lets arrive at once.
class WorkerRuntimeSmallReads : public WorkerRuntimeThreads {
 protected:
  static constexpr std::size_t kChunk = 4096;
  void SetUp() override {
    WorkerOptions o;
    o.read_chunk_bytes = kChunk;
    SetUpWith(o);
  }
};

TEST_F(WorkerRuntimeSmallReads, TasksReadJustBeforeTheConnectionEndsRunAndTheirResultsReachTheNextConnection) {
  // e1 (tiny, on the I/O thread) finishes while the worker is away; e2 (on the pool) is
  // held until the worker is back and registered. Both results reach the new connection.
  // The worker's I/O thread is held until the two tasks, padded to exactly one full read,
  // and the end of the connection are all in its socket: one read takes the tasks, and
  // the next one, in the same turn, finds the end. First, a PING answered says that the
  // worker has read everything sent so far (REGISTERED included).
  send_line(R"({"type":"PING"})");
  ASSERT_NE(read_line().find("\"PONG\""), std::string::npos);
  std::promise<void> holding;
  std::promise<void> go;
  std::future<void> go_future = go.get_future();
  asio::post(io_, [&] {
    holding.set_value();
    go_future.wait_for(std::chrono::seconds(10));
  });
  ASSERT_EQ(holding.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::string chunk = task_line("e1", "tiny") + "\n" + task_line("e2", "blocking");
  chunk.append(kChunk - chunk.size() - 1, ' ');
  chunk += '\n';
  ASSERT_EQ(chunk.size(), kChunk);
  asio::write(peer_, asio::buffer(chunk));
  peer_.shutdown(tcp::socket::shutdown_send);
  // The worker's kernel has acknowledged the end (and so holds it, behind the chunk)
  // once this side is in FIN_WAIT2.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  tcp_info info{};
  for (;;) {
    socklen_t len = sizeof info;
    ASSERT_EQ(::getsockopt(peer_.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &len), 0);
    if (info.tcpi_state == TCP_FIN_WAIT2 || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::yield();
  }
  ASSERT_EQ(info.tcpi_state, TCP_FIN_WAIT2);
  go.set_value();
  // Both start while the worker has no connection (they used to wait for its next read).
  EXPECT_TRUE(log_.wait_for({"e1", "e2"}, std::chrono::seconds(10)));
  // It comes back (after its first backoff, 100 ms) and registers: e1's result follows.
  pollfd p{acceptor_.native_handle(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the worker did not reconnect";
  peer_.close();
  peer_ = tcp::socket(io_);
  acceptor_.accept(peer_);
  in_.clear();
  EXPECT_NE(read_line().find("\"WORKER_REGISTER\""), std::string::npos);
  send_line(R"({"type":"REGISTERED","worker_id":"worker_2"})");
  const std::string first = read_line();
  EXPECT_NE(first.find(R"("task_id":"e1")"), std::string::npos) << first;
  EXPECT_NE(first.find(R"("status":"success")"), std::string::npos) << first;
  // e2 ends now, on this connection's watch: its result goes out at once (it used to
  // wait for yet another connection).
  release_promise_.set_value();
  const std::string second = read_line();
  EXPECT_NE(second.find(R"("task_id":"e2")"), std::string::npos) << second;
  EXPECT_NE(second.find(R"("status":"success")"), std::string::npos) << second;
  EXPECT_NE(second.find(R"("worker_id":"worker_2")"), std::string::npos) << second;
}

}  // namespace
}  // namespace sd::worker
