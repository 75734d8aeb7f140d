#include "server/store_writer.hpp"

#include <boost/asio/post.hpp>

#include <memory>

namespace sd::server {

StoreWriter::StoreWriter(boost::asio::io_context& io, store::TaskStore& store, bool threaded)
    : io_(io), store_(store), threaded_(threaded) {
  if (threaded_) thread_ = std::thread([this] { loop(); });
}

StoreWriter::~StoreWriter() {
  if (!threaded_) return;
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_one();
  thread_.join();
}

void StoreWriter::run(Job job, std::function<void()> done) {
  if (!threaded_) {
    {
      std::lock_guard lock(store_mu_);
      job(store_);
    }
    done();
    return;
  }
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(Entry{std::move(job), std::move(done)});
  }
  queue_cv_.notify_one();
}

void StoreWriter::run_write(Write write, std::function<void(bool ran)> done) {
  auto ran = std::make_shared<bool>(false);  // written by the job, read by the completion after it
  run(
      [this, write = std::move(write), ran](store::TaskStore& st) {
        if (write_failed_.load(std::memory_order_relaxed)) return;  // behind a failed write
        *ran = true;
        if (!write(st)) write_failed_.store(true, std::memory_order_release);
      },
      [done = std::move(done), ran] { done(*ran); });
}

void StoreWriter::wait_idle() {
  if (!threaded_) return;
  std::unique_lock lock(queue_mu_);
  idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void StoreWriter::loop() {
  for (;;) {
    Entry e;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every job handed in has run
      e = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    {
      std::lock_guard lock(store_mu_);
      e.job(store_);
    }
    {
      std::lock_guard lock(queue_mu_);
      busy_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
    }
    boost::asio::post(io_, std::move(e.done));
  }
}

}  // namespace sd::server
