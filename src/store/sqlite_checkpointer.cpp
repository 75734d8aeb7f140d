#include "store/sqlite_checkpointer.hpp"

#include <sqlite3.h>

#include "store/task_store.hpp"

namespace sd::store {

SqliteCheckpointer::SqliteCheckpointer(const std::string& path, CheckpointPages pages, int busy_timeout_ms)
    : pages_(pages), busy_timeout_(busy_timeout_ms), catch_up_at_pages_(pages.catch_up_pages) {
  const auto fail = [this](std::string cause) {
    sqlite3_close_v2(db_);
    throw StoreError("checkpoint connection: " + cause);
  };
  // The same VFS as the store's connection: in this process, it shares that one's lock
  // on the file and its WAL index in memory.
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, "unix-excl") != SQLITE_OK) {
    fail(db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory");
  }
  sqlite3_busy_timeout(db_, busy_timeout_ms);
  // A connection opens the WAL on its first read; until then a checkpoint finds no WAL
  // and does nothing.
  if (sqlite3_exec(db_, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) != SQLITE_OK) {
    fail(sqlite3_errmsg(db_));
  }
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

SqliteCheckpointer::~SqliteCheckpointer() {
  thread_.request_stop();
  thread_.join();
  sqlite3_close_v2(db_);
}

void SqliteCheckpointer::after_commit(int wal_pages) {
  if (wal_pages < requested_at_pages_) {  // the WAL started over
    requested_at_pages_ = 0;
    catch_up_at_pages_ = pages_.catch_up_pages;
  }
  if (wal_pages >= catch_up_at_pages_) {
    // One more pass while this thread commits nothing copies the whole WAL (a pass under
    // way started before the last commits: the one after it).
    catch_up_at_pages_ = wal_pages + pages_.catch_up_pages;
    std::unique_lock lock(mutex_);
    const int target = passes_ + (running_ ? 2 : 1);
    requested_ = true;
    wake_.notify_one();
    done_.wait_for(lock, busy_timeout_, [&] { return passes_ >= target; });
    requested_at_pages_ = wal_pages;
    return;
  }
  if (wal_pages >= pages_.start_pages && wal_pages - requested_at_pages_ >= pages_.step_pages) {
    requested_at_pages_ = wal_pages;
    {
      std::lock_guard lock(mutex_);
      requested_ = true;
    }
    wake_.notify_one();
  }
}

void SqliteCheckpointer::run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (wake_.wait(lock, stop, [this] { return requested_; })) {
    requested_ = false;
    running_ = true;
    lock.unlock();
    // A failure (the disk, a lock held too long) is left to the next pass: checkpoints
    // are upkeep, and no commit's durability depends on them.
    int log_pages = 0;
    int copied_pages = 0;
    sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied_pages);
    lock.lock();
    running_ = false;
    ++passes_;
    done_.notify_all();
  }
}

}  // namespace sd::store
