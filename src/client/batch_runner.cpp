#include "client/batch_runner.hpp"

#include <boost/asio/write.hpp>

#include <charconv>
#include <optional>
#include <vector>

#include "client/client.hpp"

namespace sd::client {
namespace asio = boost::asio;

namespace {

constexpr std::size_t kReadChunk = 256 * 1024;
/// A write holds at most this much; the next batch is encoded while results come in.
constexpr std::size_t kMaxWriteBytes = 1024 * 1024;

enum class TaskState : unsigned char { unsent, in_flight, answered };

/// The state of one run; every handler runs on the caller's thread inside run().
class Run {
 public:
  Run(Connection& conn, const BatchOptions& options, const TaskFactory& make_task,
      const ProgressCallback& progress)
      : conn_(conn),
        options_(options),
        make_task_(make_task),
        progress_(progress),
        prefix_(TaskIdGenerator().prefix() + "-"),
        state_(options.count, TaskState::unsent),
        sent_at_(options.count) {
    report_.total = options.count;
    window_ = options.window == 0 ? options.count : options.window;
    latencies_.reserve(options.count);
  }

  BatchReport execute() {
    start_ = Clock::now();
    last_answer_ = start_;
    last_progress_ = start_;
    if (report_.total == 0) return finish();
    process_frames();  // bytes the connection had already buffered
    write_more();
    read_more();
    asio::io_context& io = conn_.context();
    io.restart();
    while (!finished_ && !failure_) {
      const auto deadline = last_answer_ + options_.idle_timeout;
      if (io.run_one_until(deadline) != 0) continue;
      if (Clock::now() >= deadline) {
        report_.timed_out = true;
        break;
      }
      if (!reading_ && !writing_) break;  // nothing left that could finish the batch
      io.restart();
    }
    stopping_ = true;
    if (reading_ || writing_) {
      boost::system::error_code ignored;
      conn_.socket().cancel(ignored);
      io.restart();
      io.run();  // the cancelled handlers see stopping_ and start nothing new
    }
    if (failure_) throw *failure_;
    return finish();
  }

 private:
  std::string task_id(std::size_t index) const { return prefix_ + std::to_string(index); }

  std::optional<std::size_t> index_of(std::string_view id) const {
    if (id.size() <= prefix_.size() || id.substr(0, prefix_.size()) != prefix_) return std::nullopt;
    std::size_t index = 0;
    const char* first = id.data() + prefix_.size();
    const char* last = id.data() + id.size();
    auto [ptr, ec] = std::from_chars(first, last, index);
    if (ec != std::errc() || ptr != last || index >= state_.size()) return std::nullopt;
    return index;
  }

  void write_more() {
    if (writing_ || stopping_ || finished_) return;
    out_.clear();
    out_.swap(control_);  // PONGs owed to the server go first
    const auto now = Clock::now();
    while (next_ < report_.total && in_flight_ < window_ && out_.size() < kMaxWriteBytes) {
      proto::TaskMsg task = make_task_(next_);
      task.task_id = task_id(next_);
      proto::encode(out_, task);
      state_[next_] = TaskState::in_flight;
      sent_at_[next_] = now;
      ++in_flight_;
      ++next_;
    }
    report_.sent = next_;
    if (out_.empty()) return;
    writing_ = true;
    asio::async_write(conn_.socket(), asio::buffer(out_), [this](const boost::system::error_code& ec, std::size_t) {
      writing_ = false;
      if (stopping_) return;
      if (ec) return fail_lost(ec);
      write_more();
    });
  }

  void read_more() {
    if (reading_ || stopping_ || finished_) return;
    reading_ = true;
    proto::FrameDecoder& decoder = conn_.decoder();
    conn_.socket().async_read_some(
        asio::buffer(decoder.prepare(kReadChunk), kReadChunk),
        [this](const boost::system::error_code& ec, std::size_t n) {
          reading_ = false;
          conn_.decoder().commit(n);
          if (n > 0) process_frames();
          if (stopping_ || finished_ || failure_) return;
          if (ec) return fail_lost(ec);
          write_more();
          read_more();
        });
  }

  void process_frames() {
    proto::FrameDecoder& decoder = conn_.decoder();
    for (;;) {
      const proto::Frame frame = decoder.next();
      if (frame.kind == proto::Frame::Kind::incomplete) break;
      if (frame.kind == proto::Frame::Kind::error) {
        if (frame.fatal) {
          failure_ = ClientError(ErrorKind::protocol, "respuesta inválida del servidor: " + std::string(frame.detail));
          return;
        }
        ++report_.unexpected;
        continue;
      }
      auto decoded = proto::decode(frame.text);
      if (auto* bad = std::get_if<proto::DecodeError>(&decoded)) {
        ++report_.unexpected;
        if (report_.first_error.empty()) report_.first_error = "respuesta inválida: " + bad->message;
        continue;
      }
      handle(std::get<proto::Envelope>(decoded).message);
    }
    maybe_progress(false);
  }

  void handle(const proto::Message& message) {
    if (const auto* r = std::get_if<proto::ResultMsg>(&message)) {
      answer(r->task_id, r->ok, r->error_code, r->error_message);
    } else if (const auto* e = std::get_if<proto::ErrorMsg>(&message)) {
      if (e->code == proto::ErrorCode::unauthorized) {
        failure_ = ClientError(ErrorKind::unauthorized, "no autorizado: " + e->message);
        return;
      }
      if (!e->task_id.empty() && index_of(e->task_id)) {
        answer(e->task_id, false, e->code, e->message);
      } else {
        ++report_.unexpected;
        if (report_.first_error.empty()) {
          report_.first_error = std::string(proto::to_string(e->code)) + ": " + e->message;
        }
      }
    } else if (std::holds_alternative<proto::PingMsg>(message)) {
      control_ += proto::to_json_line(proto::PongMsg{});
    } else {
      ++report_.unexpected;
    }
  }

  void answer(std::string_view id, bool ok, proto::ErrorCode code, const std::string& message) {
    const auto index = index_of(id);
    if (!index) {
      ++report_.unexpected;
      return;
    }
    TaskState& state = state_[*index];
    if (state == TaskState::answered) {
      ++report_.duplicates;
      return;
    }
    if (state == TaskState::unsent) {
      ++report_.unexpected;
      return;
    }
    state = TaskState::answered;
    --in_flight_;
    last_answer_ = Clock::now();
    latencies_.push_back(std::chrono::duration<double, std::milli>(last_answer_ - sent_at_[*index]).count());
    if (ok) {
      ++report_.completed;
    } else {
      ++report_.failed;
      ++report_.errors[std::string(proto::to_string(code))];
      if (report_.first_error.empty()) report_.first_error = std::string(proto::to_string(code)) + ": " + message;
    }
    if (report_.completed + report_.failed == report_.total) finished_ = true;
  }

  void maybe_progress(bool last) {
    if (!progress_) return;
    const auto now = Clock::now();
    if (!last && now - last_progress_ < options_.progress_interval) return;
    last_progress_ = now;
    BatchProgress p;
    p.total = report_.total;
    p.sent = next_;
    p.completed = report_.completed;
    p.failed = report_.failed;
    p.elapsed_s = std::chrono::duration<double>(now - start_).count();
    progress_(p);
  }

  void fail_lost(const boost::system::error_code& ec) {
    if (ec == asio::error::eof) {
      failure_ = ClientError(ErrorKind::lost, "el servidor " + conn_.endpoint() + " cerró la conexión");
    } else {
      failure_ = ClientError(ErrorKind::lost, "se perdió la conexión con " + conn_.endpoint() + ": " + ec.message());
    }
  }

  BatchReport finish() {
    const auto end = report_.completed + report_.failed > 0 ? last_answer_ : Clock::now();
    report_.elapsed_s = std::chrono::duration<double>(end - start_).count();
    report_.lost = next_ - (report_.completed + report_.failed);
    const auto answered = static_cast<double>(report_.completed + report_.failed);
    report_.throughput = report_.elapsed_s > 0 ? answered / report_.elapsed_s : 0;
    report_.latency_ms = summarize(latencies_);
    maybe_progress(true);
    return report_;
  }

  Connection& conn_;
  const BatchOptions& options_;
  const TaskFactory& make_task_;
  const ProgressCallback& progress_;
  std::string prefix_;
  std::vector<TaskState> state_;
  std::vector<Clock::time_point> sent_at_;
  std::vector<double> latencies_;
  std::size_t window_ = 0;
  std::size_t next_ = 0;
  std::size_t in_flight_ = 0;
  std::string out_;
  std::string control_;
  bool writing_ = false;
  bool reading_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  std::optional<ClientError> failure_;
  Clock::time_point start_;
  Clock::time_point last_answer_;
  Clock::time_point last_progress_;
  BatchReport report_;
};

}  // namespace

BatchRunner::BatchRunner(Connection& connection, BatchOptions options)
    : conn_(connection), options_(options) {}

BatchReport BatchRunner::run(const TaskFactory& make_task, const ProgressCallback& progress) {
  Run run(conn_, options_, make_task, progress);
  return run.execute();
}

}  // namespace sd::client
