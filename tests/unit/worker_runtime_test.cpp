// WorkerRuntime against a stand-in server on a real loopback socket: which thread runs
// a task (the I/O thread for a tiny task on an idle pool, a pool thread otherwise).
#include "worker/worker_runtime.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <set>
#include <mutex>
#include <string>
#include <thread>

#include "tasks/task_registry.hpp"

namespace sd::worker {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// Records the thread each task ran on, by task_id.
struct ThreadLog {
  std::mutex mutex;
  std::map<std::string, std::thread::id> ran_on;
  void note(const boost::json::object& data) {
    std::lock_guard lock(mutex);
    ran_on[std::string(data.at("id").as_string())] = std::this_thread::get_id();
  }
  std::thread::id of(const std::string& id) {
    std::lock_guard lock(mutex);
    return ran_on.at(id);
  }
};

class WorkerRuntimeThreads : public ::testing::Test {
 protected:
  void SetUp() override {
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
    WorkerOptions o;
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

  std::string read_line() {
    const std::size_t n = asio::read_until(peer_, asio::dynamic_buffer(in_), '\n');
    std::string line = in_.substr(0, n);
    in_.erase(0, n);
    return line;
  }
  void send_line(const std::string& s) { asio::write(peer_, asio::buffer(s + "\n")); }
  void send_task(const std::string& id, const std::string& type, const std::string& extra = "") {
    send_line(R"({"type":"TASK","task_id":")" + id + R"(","task_type":")" + type +
              R"(","task_data":{"id":")" + id + "\"" + extra + R"(},"attempt":1})");
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

}  // namespace
}  // namespace sd::worker
