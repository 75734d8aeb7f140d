#include "server/dispatcher.hpp"

#include <algorithm>
#include <cassert>

namespace sd::server {

using proto::ErrorCode;

Dispatcher::Dispatcher(DispatcherOptions options, DispatchSink& sink) : options_(std::move(options)), sink_(sink) {}

Dispatcher::~Dispatcher() = default;

Dispatcher::ClientInfo* Dispatcher::client_info(ConnId client) {
  if (client == 0) return nullptr;
  auto it = clients_.find(client);
  return it == clients_.end() ? nullptr : &it->second;
}

void Dispatcher::refuse(ConnId client, ErrorCode code, std::string message, const std::string& task_id) {
  ++counters_.rejected;
  sink_.send_error(client, proto::ErrorMsg{code, std::move(message), task_id});
}

std::optional<std::string> Dispatcher::submit(ConnId client, proto::TaskMsg task, TimePoint now) {
  if (!accepting_) {
    refuse(client, ErrorCode::server_shutdown, "the server is shutting down", task.task_id);
    return std::nullopt;
  }
  // Whatever is accepted is stored: refuse here what no store can hold, so that one bad
  // task never makes a whole batch fail.
  if (!store::is_storable_text(task.task_id) || !store::is_storable_text(task.task_type) ||
      !store::is_storable_text(task.task_data)) {
    refuse(client, ErrorCode::invalid_task,
           "task_id, task_type and task_data must be valid UTF-8 without NUL characters", task.task_id);
    return std::nullopt;
  }
  if (!task.task_id.empty()) {
    if (TaskEntry* existing = tasks_.find(task.task_id)) {
      TaskEntry& e = *existing;
      // The same task re-sent from another connection (a client that reconnected):
      // that connection now gets its result.
      if (!e.answered && e.client != client && e.msg.task_type == task.task_type &&
          e.msg.task_data == task.task_data) {
        if (e.state == TaskEntry::State::queued) {
          if (ClientInfo* c = client_info(e.client)) --c->queued;
        }
        e.client = client;
        ClientInfo& info = clients_[client];
        if (e.state == TaskEntry::State::queued) ++info.queued;
        if (e.keep_result) info.has_async = true;
        ++counters_.attached;
        if (task.reply == proto::ReplyMode::ack) sink_.send_accepted(client, e.msg.task_id);
        return e.msg.task_id;
      }
      refuse(client, ErrorCode::duplicate_task_id, "task_id '" + task.task_id + "' is already pending",
             task.task_id);
      return std::nullopt;
    }
  }
  if (queue_.size() >= options_.max_queued) {
    refuse(client, ErrorCode::queue_full,
           "the queue holds " + std::to_string(queue_.size()) + " tasks, its maximum", task.task_id);
    return std::nullopt;
  }
  if (task.task_id.empty()) {
    do {
      task.task_id = options_.id_prefix + "-" + std::to_string(next_id_++);
    } while (tasks_.contains(task.task_id));
  }
  auto [added, inserted] = tasks_.try_emplace(task.task_id);
  assert(inserted);  // a pending id was refused or attached above
  TaskEntry& entry = *added;
  entry.msg = std::move(task);
  entry.msg.attempt = 0;
  entry.client = client;
  entry.seq = next_seq_++;
  entry.accepted_at = now;
  entry.keep_result = entry.msg.reply == proto::ReplyMode::ack;
  if (entry.keep_result) {
    clients_[client].has_async = true;
  } else {
    clients_.try_emplace(client);
  }
  if (options_.record_store_ops) {
    store::StoredTask st;
    st.task_id = entry.msg.task_id;
    st.task_type = entry.msg.task_type;
    st.task_data_json = entry.msg.task_data.empty() ? std::string("{}") : entry.msg.task_data;
    st.priority = entry.msg.priority;
    st.timeout_ms = entry.msg.timeout_ms;
    st.max_retries = entry.msg.max_retries.value_or(options_.default_max_retries);
    st.attempt = 0;
    st.async = entry.keep_result;
    st.created_at_ms = wall_ms_;
    batch_.add_task(std::move(st));
  }
  entry.stored = TaskEntry::Stored::queued;
  ++store_counts_.queued;
  enqueue(entry, false);
  ++counters_.accepted;
  if (entry.msg.timeout_ms) {
    deadlines_.push_back(Deadline{now + std::chrono::milliseconds(*entry.msg.timeout_ms), entry.msg.task_id, entry.seq});
    std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
  }
  if (entry.msg.reply == proto::ReplyMode::ack) sink_.send_accepted(client, entry.msg.task_id);
  return entry.msg.task_id;
}

void Dispatcher::restore(const store::TaskRecord& record, TimePoint now) {
  const store::StoredTask& st = record.task;
  auto [added, inserted] = tasks_.try_emplace(st.task_id);
  if (!inserted) return;
  TaskEntry& entry = *added;
  entry.msg.task_id = st.task_id;
  entry.msg.task_type = st.task_type;
  entry.msg.task_data = st.task_data_json;
  entry.msg.priority = st.priority;
  entry.msg.timeout_ms = st.timeout_ms;
  entry.msg.max_retries = st.max_retries;
  entry.msg.reply = st.async ? proto::ReplyMode::ack : proto::ReplyMode::result;
  entry.msg.attempt = 0;
  entry.client = 0;
  entry.seq = next_seq_++;
  entry.accepted_at = now;
  entry.attempt = st.attempt;
  entry.keep_result = true;
  entry.stored = record.state == store::TaskState::running ? TaskEntry::Stored::running : TaskEntry::Stored::queued;
  if (record.state == store::TaskState::running) {
    batch_.requeue(st.task_id);
    set_stored(entry, TaskEntry::Stored::queued);
  }
  enqueue(entry, false);
  ++counters_.recovered;
  if (entry.msg.timeout_ms) {
    deadlines_.push_back(Deadline{now + std::chrono::milliseconds(*entry.msg.timeout_ms), entry.msg.task_id, entry.seq});
    std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
  }
}

void Dispatcher::set_stored(TaskEntry& task, TaskEntry::Stored to) {
  auto slot = [this](TaskEntry::Stored s) -> std::int64_t& {
    switch (s) {
      case TaskEntry::Stored::queued: return store_counts_.queued;
      case TaskEntry::Stored::running: return store_counts_.running;
      case TaskEntry::Stored::done: break;
    }
    return store_counts_.done;
  };
  --slot(task.stored);
  ++slot(to);
  task.stored = to;
}

void Dispatcher::record_finish(TaskEntry& task, const proto::ResultMsg& sent) {
  record_start(task);
  line_.clear();
  proto::encode(line_, sent);
  if (!line_.empty() && line_.back() == '\n') line_.pop_back();
  sink_.result_recorded(task.msg, line_);
  if (task.client != 0) sink_.send_result(task.client, sent, line_);
  if (options_.record_store_ops) {
    store::StoredResult r;
    r.task_id = task.msg.task_id;
    r.result_message_json = line_;
    r.finished_at_ms = wall_ms_;
    batch_.finish(std::move(r));
  }
  set_stored(task, TaskEntry::Stored::done);
}

void Dispatcher::record_drop(TaskEntry& task) {
  record_start(task);
  if (options_.record_store_ops) batch_.drop(task.msg.task_id);
  auto& n = task.stored == TaskEntry::Stored::queued    ? store_counts_.queued
            : task.stored == TaskEntry::Stored::running ? store_counts_.running
                                                        : store_counts_.done;
  --n;
}

std::optional<std::string_view> Dispatcher::pending_state(std::string_view task_id) const {
  const TaskEntry* t = tasks_.find(task_id);
  if (t == nullptr || t->answered) return std::nullopt;
  return t->state == TaskEntry::State::queued ? std::string_view("queued") : std::string_view("running");
}

const TaskEntry* Dispatcher::find_pending(std::string_view task_id) const {
  const TaskEntry* t = tasks_.find(task_id);
  return t == nullptr || t->answered ? nullptr : t;
}

void Dispatcher::enqueue(TaskEntry& task, bool front) {
  task.state = TaskEntry::State::queued;
  task.worker = 0;
  if (front) {
    queue_.push_front(&task);
  } else {
    queue_.push_back(&task);
  }
  if (ClientInfo* c = client_info(task.client)) ++c->queued;
}

std::vector<TaskEntry*> Dispatcher::unqueue_if(const std::function<bool(const TaskEntry&)>& pred) {
  std::vector<TaskEntry*> removed;
  queue_.remove_if([&](const TaskEntry& t) {
    if (!pred(t)) return false;
    removed.push_back(const_cast<TaskEntry*>(&t));
    return true;
  });
  for (TaskEntry* t : removed) {
    if (ClientInfo* c = client_info(t->client)) --c->queued;
  }
  std::sort(removed.begin(), removed.end(), [](const TaskEntry* a, const TaskEntry* b) { return a->seq < b->seq; });
  return removed;
}

void Dispatcher::erase(TaskEntry& task) {
  if (task.start_unrecorded) --waiting_starts_;  // nothing more will be recorded for it
  tasks_.erase(task);
}

void Dispatcher::record_start(TaskEntry& task) {
  if (!task.start_unrecorded) return;
  task.start_unrecorded = false;
  --waiting_starts_;
  batch_.start(task.msg.task_id, task.attempt);
}

void Dispatcher::record_due_starts(TimePoint now, bool all) {
  while (!start_queue_.empty() && (all || start_queue_.front().due <= now)) {
    const WaitingStart& w = start_queue_.front();
    TaskEntry* t = tasks_.find(w.task_id);
    // Still out on that attempt with its record waiting (else it was recorded already,
    // or the task is gone, or it runs again under a later attempt with its own entry).
    if (t != nullptr && t->start_unrecorded && t->attempt == w.attempt) record_start(*t);
    start_queue_.pop_front();
  }
}

void Dispatcher::record_waiting_starts() { record_due_starts(TimePoint{}, true); }

void Dispatcher::finish(TaskEntry& task, proto::ResultMsg result) {
  if (!task.answered) {
    task.answered = true;
    if (result.ok) {
      ++counters_.completed;
    } else {
      ++counters_.failed;
    }
    result.task_id = task.msg.task_id;
    result.attempt = 0;
    record_finish(task, result);
  }
  // A task still out on a worker stays known until that worker reports, so that the
  // worker's slot stays counted and the late result is recognised as stale.
  if (task.state == TaskEntry::State::running) return;
  erase(task);
}

void Dispatcher::fail(TaskEntry& task, ErrorCode code, std::string message) {
  proto::ResultMsg r;
  r.ok = false;
  r.error_code = code;
  r.error_message = std::move(message);
  finish(task, std::move(r));
}

void Dispatcher::client_gone(ConnId client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  if (it->second.queued > 0) {
    for (TaskEntry* t : unqueue_if([client](const TaskEntry& t) {
           return t.client == client && !t.keep_result;
         })) {
      record_drop(*t);
      erase(*t);
    }
  }
  // Running tasks: nobody waits for them any more; ask their workers to stop.
  for (auto& [conn, worker] : workers_) {
    for (TaskEntry* t : worker.in_flight) {
      if (t->client != client) continue;
      t->client = 0;
      // Asynchronous tasks outlive their submitter; the others are not worth finishing.
      if (!t->answered && !t->keep_result) cancel_once(*t);
    }
  }
  // Asynchronous tasks outlive their submitter (a scan of every task: only for clients
  // that sent some, so that thousands of plain clients leaving cost nothing).
  if (it->second.has_async) {
    tasks_.for_each([client](TaskEntry& t) {
      if (t.client == client) t.client = 0;
    });
  }
  clients_.erase(client);
}

const WorkerInfo& Dispatcher::add_worker(ConnId conn, const proto::WorkerRegisterMsg& reg, TimePoint now) {
  WorkerInfo& w = workers_[conn];
  w.conn = conn;
  w.id = "worker_" + std::to_string(next_worker_++);
  w.name = reg.name;
  w.threads = reg.threads;
  if (reg.prefetch || options_.default_prefetch >= 0) {
    w.capacity = w.window = reg.threads + reg.prefetch.value_or(options_.default_prefetch);
    w.adaptive = false;
  } else {
    // Adaptive (WorkerInfo::window). Measured with 20k reverse tasks, 256 in flight, 3
    // workers x 4 threads: a fixed prefetch of 8 ran ~65-90k tasks/s, 32 ~120k, 64 ~130k.
    w.capacity = reg.threads * (1 + kMaxQueuedPerThread);
    w.window = kStartWindowPerThread * reg.threads;
    w.adaptive = true;
  }
  w.task_types = reg.task_types;
  std::sort(w.task_types.begin(), w.task_types.end());
  w.last_seen = now;
  w.registered_at = now;
  ring_.push_back(conn);
  return w;
}

void Dispatcher::worker_seen(ConnId conn, TimePoint now) {
  auto it = workers_.find(conn);
  if (it != workers_.end()) it->second.last_seen = now;
}

const WorkerInfo* Dispatcher::worker_draining(ConnId conn) {
  auto it = workers_.find(conn);
  if (it == workers_.end()) return nullptr;
  it->second.draining = true;
  return &it->second;
}

void Dispatcher::worker_gone(ConnId conn) {
  auto it = workers_.find(conn);
  if (it == workers_.end()) return;
  WorkerInfo& w = it->second;
  // Requeue in reverse so that push_front keeps the original order at the front.
  std::vector<TaskEntry*> held = std::move(w.in_flight);
  std::sort(held.begin(), held.end(), [](const TaskEntry* a, const TaskEntry* b) { return a->seq > b->seq; });
  for (TaskEntry* t : held) {
    --running_;
    t->worker = 0;
    t->state = TaskEntry::State::queued;  // no longer out anywhere
    // Nobody will read the result: forget the task (asynchronous tasks excepted).
    if (t->answered || (t->client == 0 && !t->keep_result)) {
      if (!t->answered) record_drop(*t);
      erase(*t);
      continue;
    }
    if (!accepting_ && t->keep_result) {
      // Kept for the next start, like the queued ones.
      record_start(*t);
      if (options_.record_store_ops) batch_.requeue(t->msg.task_id);
      set_stored(*t, TaskEntry::Stored::queued);
      erase(*t);
      continue;
    }
    if (!accepting_) {
      fail(*t, ErrorCode::server_shutdown, "the server is shutting down and the task's worker was lost");
      continue;
    }
    const int max_retries = t->msg.max_retries.value_or(options_.default_max_retries);
    ++t->lost_runs;
    if (t->lost_runs > max_retries) {
      fail(*t, ErrorCode::worker_lost,
           "the task's worker was lost " + std::to_string(t->lost_runs) + " times (max_retries " +
               std::to_string(max_retries) + ")");
      continue;
    }
    record_start(*t);
    if (options_.record_store_ops) batch_.requeue(t->msg.task_id);
    set_stored(*t, TaskEntry::Stored::queued);
    enqueue(*t, true);
    ++counters_.requeued;
  }
  std::erase(ring_, conn);
  if (ring_pos_ >= ring_.size()) ring_pos_ = 0;
  workers_.erase(it);
}

void Dispatcher::detach_from_worker(TaskEntry& task) {
  auto it = workers_.find(task.worker);
  if (it != workers_.end()) {
    // Swap-remove: the list's order means nothing (worker_gone sorts by seq).
    std::vector<TaskEntry*>& list = it->second.in_flight;
    const std::uint32_t pos = task.in_flight_pos;
    assert(pos < list.size() && list[pos] == &task);
    list[pos] = list.back();
    list[pos]->in_flight_pos = pos;
    list.pop_back();
    if (task.untiny_slot) --it->second.untiny_in_flight;
  }
  task.untiny_slot = false;
  task.worker = 0;
  --running_;
}

void Dispatcher::on_result(ConnId worker_conn, proto::ResultMsg result) {
  auto wit = workers_.find(worker_conn);
  if (wit == workers_.end()) return;
  WorkerInfo& w = wit->second;
  TaskEntry* found = tasks_.find(result.task_id);
  if (found == nullptr) {
    ++counters_.stale_results;
    return;
  }
  TaskEntry& task = *found;
  // Fencing: only the attempt currently out on this very worker counts. A result
  // without an attempt (a minimal worker) counts if this worker holds the task.
  const bool from_holder = task.state == TaskEntry::State::running && task.worker == worker_conn &&
                           (result.attempt == 0 || result.attempt == task.attempt);
  // A worker that lost its connection (or a server restart) re-sends what it finished
  // meanwhile: taken in, without running the task again, when that attempt is still
  // the current one of a task waiting in the queue.
  const bool redelivered = task.state == TaskEntry::State::queued && !task.answered && result.attempt != 0 &&
                           result.attempt == task.attempt;
  if (!from_holder && !redelivered) {
    ++counters_.stale_results;
    return;
  }
  if (from_holder) {
    detach_from_worker(task);
    if (result.processing_time && *result.processing_time >= 0) {
      learn_duration(task.msg.task_type, *result.processing_time);
      if (w.adaptive) adapt_window(w, *result.processing_time);
    }
  } else {
    unqueue_if([&task](const TaskEntry& t) { return &t == &task; });
  }
  if (result.ok) {
    ++w.completed;
  } else {
    ++w.failed;
  }
  if (!task.answered) {
    if (task.client == 0 && !task.keep_result) {
      // Nobody will ever read it: the client left and the task was not asynchronous.
      record_drop(task);
    } else {
      task.answered = true;
      if (result.ok) {
        ++counters_.completed;
      } else {
        ++counters_.failed;
      }
      result.task_id = task.msg.task_id;
      result.worker_id = w.id;
      result.attempt = 0;
      record_finish(task, result);
    }
  }
  erase(task);
}

bool Dispatcher::can_run(const WorkerInfo& w, std::string_view type) const {
  return w.task_types.empty() || std::binary_search(w.task_types.begin(), w.task_types.end(), type);
}

bool Dispatcher::any_worker_runs(std::string_view type) const {
  return std::any_of(workers_.begin(), workers_.end(), [&](const auto& kv) { return can_run(kv.second, type); });
}

void Dispatcher::cancel_once(TaskEntry& task) {
  if (task.cancel_sent) return;
  task.cancel_sent = true;
  sink_.send_cancel(task.worker, proto::CancelMsg{task.msg.task_id, task.attempt});
}

void Dispatcher::assign(WorkerInfo& worker, TaskEntry& task, TimePoint now, bool tiny) {
  task.untiny_slot = !tiny;
  if (!tiny) ++worker.untiny_in_flight;
  task.state = TaskEntry::State::running;
  task.worker = worker.conn;
  task.dispatched_at = now;
  ++task.attempt;
  task.cancel_sent = false;
  task.in_flight_pos = static_cast<std::uint32_t>(worker.in_flight.size());
  worker.in_flight.push_back(&task);
  ++running_;
  if (ClientInfo* c = client_info(task.client)) --c->queued;
  task.msg.attempt = task.attempt;
  if (options_.record_store_ops) {
    if (options_.running_record_delay.count() > 0) {
      if (!task.start_unrecorded) ++waiting_starts_;
      task.start_unrecorded = true;
      start_queue_.push_back(WaitingStart{task.msg.task_id, task.attempt, now + options_.running_record_delay});
    } else {
      batch_.start(task.msg.task_id, task.attempt);
    }
  }
  set_stored(task, TaskEntry::Stored::running);
  sink_.send_task(worker.conn, task.msg, task.seq);
}

void Dispatcher::adapt_window(WorkerInfo& w, double task_seconds) {
  w.avg_task_seconds = w.avg_task_seconds < 0 ? task_seconds : w.avg_task_seconds + (task_seconds - w.avg_task_seconds) / 8;
  w.window = window_for(w, w.avg_task_seconds);
}

int Dispatcher::window_for(const WorkerInfo& w, double seconds) {
  const double per_thread = kRoundTripCover / std::max(seconds, 1e-7);
  const double wanted = per_thread * w.threads;
  const int most = w.capacity - w.threads;
  const int extra = wanted >= most ? most : std::max(w.threads, static_cast<int>(wanted));
  return w.threads + std::min(extra, most);
}

bool Dispatcher::has_slot_for(const WorkerInfo& w, std::string_view type) const {
  return w.untiny_in_flight < untiny_limit(w, type) || is_tiny_type(type);
}

int Dispatcher::untiny_limit(const WorkerInfo& w, std::string_view type) const {
  if (!w.adaptive) return w.capacity;
  auto it = type_seconds_.find(type);
  return it == type_seconds_.end() ? kStartWindowPerThread * w.threads : window_for(w, it->second);
}

void Dispatcher::dispatch(TimePoint now) {
  if (queue_.empty() || ring_.empty()) return;
  fill_tiny_task_workers(now);
  round_robin(now);
}

bool Dispatcher::runs_tiny_tasks(const WorkerInfo& w) {
  return w.adaptive && w.window > kStartWindowPerThread * w.threads;
}

void Dispatcher::learn_duration(std::string_view type, double seconds) {
  auto it = type_seconds_.find(type);
  if (it == type_seconds_.end()) {
    if (type_seconds_.size() < kMaxLearntTypes) type_seconds_.emplace(std::string(type), seconds);
    return;
  }
  it->second += (seconds - it->second) / 8;
}

bool Dispatcher::is_tiny_type(std::string_view type) const {
  auto it = type_seconds_.find(type);
  return it != type_seconds_.end() && it->second < kTinyTaskSeconds;
}

void Dispatcher::fill_tiny_task_workers(TimePoint now) {
  // Workers shown to run tiny tasks are filled first, in registration order, each up to
  // its window, with tasks of types known to be tiny: a load of tiny tasks packs onto as
  // few workers as it needs, in fuller messages, and the workers it does not need stay
  // asleep. Spread over all of them instead, each worker wakes for a handful of tasks
  // (measured, sd-bench 1 x 256 on 48 workers: ~31k tasks/s one task per step, ~205k
  // each given its window in one step but in turn, ~270k filled first). Packing stops at
  // the first task (in queue order) of another type: that one goes round-robin.
  for (const ConnId conn : ring_) {
    WorkerInfo& w = workers_.at(conn);
    if (w.draining || !runs_tiny_tasks(w)) continue;
    const TaskQueue::TypeFilter has_slot = [this, &w](std::string_view type) { return has_slot_for(w, type); };
    for (auto held = static_cast<int>(w.in_flight.size()); held < w.window; ++held) {
      TaskEntry* task = queue_.peek_for(w.task_types);
      if (task == nullptr) break;
      bool pass_over = false;
      if (!is_tiny_type(task->msg.task_type)) {
        if (has_slot_for(w, task->msg.task_type)) break;  // it goes round-robin
        // A longer task that waits for a slot on this worker does not stop the tiny ones
        // behind it (the filter costs lookups: only then).
        pass_over = true;
        task = queue_.peek_for(w.task_types, has_slot);
        if (task == nullptr || !is_tiny_type(task->msg.task_type)) break;
      }
      queue_.pop_for(w.task_types, pass_over ? has_slot : TaskQueue::TypeFilter{});
      assign(w, *task, now, true);
    }
    if (queue_.empty()) return;
  }
}

void Dispatcher::round_robin(TimePoint now) {
  // One task per worker with a free slot per step, starting where the last step
  // stopped, so that long tasks spread over idle workers.
  bool progress = true;
  while (progress && !queue_.empty()) {
    progress = false;
    for (std::size_t n = 0; n < ring_.size() && !queue_.empty(); ++n) {
      const std::size_t pos = (ring_pos_ + n) % ring_.size();
      WorkerInfo& w = workers_.at(ring_[pos]);
      if (w.draining || static_cast<int>(w.in_flight.size()) >= w.window) continue;
      // Past the tasks of types it has no slot for now (long ones, once it holds what
      // their duration calls for): tiny ones behind them need not wait for those.
      TaskEntry* task =
          queue_.pop_for(w.task_types, [this, &w](std::string_view type) { return has_slot_for(w, type); });
      if (task == nullptr) continue;
      assign(w, *task, now, is_tiny_type(task->msg.task_type));
      progress = true;
      ring_pos_ = (pos + 1) % ring_.size();
      break;  // the next step starts after this worker
    }
  }
}

void Dispatcher::tick(TimePoint now) {
  record_due_starts(now, false);
  while (!deadlines_.empty() && deadlines_.front().at <= now) {
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
    Deadline d = std::move(deadlines_.back());
    deadlines_.pop_back();
    TaskEntry* found = tasks_.find(d.task_id);
    if (found == nullptr || found->seq != d.seq || found->answered) continue;
    TaskEntry& task = *found;
    const std::string message = "the task did not finish within " + std::to_string(*task.msg.timeout_ms) + " ms";
    if (task.state == TaskEntry::State::queued) {
      unqueue_if([&task](const TaskEntry& t) { return &t == &task; });
    } else {
      cancel_once(task);
    }
    fail(task, ErrorCode::timeout, message);
  }
  if (now - last_unrunnable_check_ >= std::chrono::milliseconds(200)) {
    last_unrunnable_check_ = now;
    expire_unrunnable(now);
  }
}

void Dispatcher::expire_unrunnable(TimePoint now) {
  // With no worker at all, nothing can be known about a type: tasks wait.
  if (workers_.empty() || queue_.empty()) return;
  std::vector<std::string> unrunnable;
  queue_.for_each_type([&](std::string_view type) {
    if (!any_worker_runs(type)) unrunnable.emplace_back(type);
  });
  if (unrunnable.empty()) return;
  const auto expired = unqueue_if([&](const TaskEntry& t) {
    return now - t.accepted_at >= options_.queue_timeout &&
           std::find(unrunnable.begin(), unrunnable.end(), t.msg.task_type) != unrunnable.end();
  });
  for (TaskEntry* t : expired) {
    fail(*t, ErrorCode::unknown_task_type,
         "no connected worker runs task type '" + t->msg.task_type + "' (waited " +
             std::to_string(options_.queue_timeout.count()) + " ms)");
  }
}

std::vector<ConnId> Dispatcher::silent_workers(TimePoint now, std::chrono::milliseconds timeout) const {
  std::vector<ConnId> out;
  for (const auto& [conn, w] : workers_) {
    if (now - w.last_seen > timeout) out.push_back(conn);
  }
  return out;
}

std::size_t Dispatcher::stop_accepting() {
  accepting_ = false;
  std::size_t kept = 0;
  for (TaskEntry* t : unqueue_if([](const TaskEntry&) { return true; })) {
    if (t->keep_result) {
      // Stays queued in the store: the next start runs it.
      ++kept;
      erase(*t);
      continue;
    }
    fail(*t, ErrorCode::server_shutdown, "the server is shutting down");
  }
  return kept;
}

void Dispatcher::fail_running() {
  for (auto& [conn, w] : workers_) {
    for (TaskEntry* t : w.in_flight) {
      // Asynchronous tasks stay in the store (running): the next start runs them again.
      if (!t->answered && !t->keep_result) {
        fail(*t, ErrorCode::server_shutdown, "the server shut down before the task finished");
      }
    }
  }
}

std::vector<const WorkerInfo*> Dispatcher::workers() const {
  std::vector<const WorkerInfo*> out;
  out.reserve(ring_.size());
  for (ConnId c : ring_) out.push_back(&workers_.at(c));  // the ring is in registration order
  return out;
}

}  // namespace sd::server
