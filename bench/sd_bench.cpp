/// sd-bench: the project's load generator, in the spirit of redis-benchmark.
///
/// Keeps `--inflight` TASKs outstanding on each of `--conns` connections, checks every
/// reply, and prints throughput and latency percentiles.
///
/// It has to be cheap per task, or it would measure itself instead of the server:
///  - one thread, one epoll set, level-triggered;
///  - writes are batched: whenever a connection has room in its window, every TASK line
///    that fits is appended to its output buffer and the buffer goes out in one send();
///  - reads are batched: each recv() takes up to kReadChunk bytes straight into the
///    FrameDecoder's buffer, and every frame in it is handled before the next recv();
///  - a reply is read by scanning its top-level members (reply_scan.hpp), not parsed
///    into a DOM, and its "result" is compared byte for byte with the expected text,
///    which is computed once, before the run, by the project's own task code.
///
/// Task ids are "<random hex>.<phase>.<n>": unique server-wide (other clients, earlier
/// runs), and <n> indexes the per-task state directly, so a reply costs no hash lookup.
///
/// Exit status: 0 every task ok; 2 any error, mismatch, lost, duplicate or unexpected
/// reply (or timeout/interrupt); 1 usage or connection error.

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/duration.hpp"
#include "proto/error_code.hpp"
#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"
#include "reply_scan.hpp"
#include "tasks/task_registry.hpp"

namespace {

using sd::bench::Reply;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitFailed = 2;

/// Bytes asked of each recv(). Large enough that a burst of small replies costs one call;
/// a fibonacci(10000) reply (~10 MB) takes a few.
constexpr std::size_t kReadChunk = 256 * 1024;
/// Replies bigger than the server's own cap (16 MiB) are not expected, but sd-bench may
/// face other servers; the cap only protects sd-bench's memory.
constexpr std::size_t kMaxReplyBytes = 64u * 1024u * 1024u;
/// Offending replies printed to stderr, so a broken server cannot flood the terminal.
constexpr int kMaxNotes = 5;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }

struct Options {
  std::string host = "127.0.0.1";
  int port = 9000;
  int conns = 1;
  int inflight = 256;
  std::uint64_t tasks = 10000;
  std::string duration;  ///< empty: run --tasks
  std::string type = "reverse";
  std::optional<std::string> payload;
  std::optional<std::string> seed;
  std::optional<std::string> data;  ///< raw task_data JSON, overrides payload/seed
  std::string token;
  bool json = false;
  std::uint64_t warmup = 0;
  std::string timeout = "120s";
};

// --------------------------------------------------------------------------- the task

/// What every reply must carry, computed once by the project's task implementation.
struct Expectation {
  bool ok = false;
  std::string result;     ///< exact text of "result", when ok
  std::string canonical;  ///< canonical_json(result), for servers that format differently
  std::string code;       ///< when !ok: the error the server should report
  std::string message;
};

bool is_json_integer(std::string_view s) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// The task_data object text for --type/--payload/--seed, or an error message.
std::optional<std::string> build_task_data(const Options& o, std::string& error) {
  if (o.data) return *o.data;
  std::string out;
  const std::string& t = o.type;
  if (t == "reverse" || t == "hash") {
    out = "{\"text\":";
    sd::proto::append_json_string(out, o.payload.value_or("hola mundo"));
    out += '}';
    return out;
  }
  // Integer payloads go on the wire as written, out-of-range values included, so that a
  // run can check the server's rejection of them.
  const std::string n = o.payload.value_or(t == "fibonacci" ? "10" : t == "compute" ? "1000" : "10");
  if (!is_json_integer(n)) {
    error = fmt::format("--payload for {} must be an integer, got '{}'", t, n);
    return std::nullopt;
  }
  if (t == "fibonacci") return "{\"n\":" + n + "}";
  if (t == "sleep") return "{\"ms\":" + n + "}";
  out = "{\"iterations\":" + n;
  if (o.seed) {
    out += ",\"seed\":";
    sd::proto::append_json_string(out, *o.seed);
  }
  out += '}';
  return out;
}

std::optional<Expectation> expect(const std::string& type, const std::string& task_data,
                                  std::string& error) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(task_data, ec);
  if (ec || !v.is_object()) {
    error = "task_data must be a JSON object: " + task_data;
    return std::nullopt;
  }
  const auto registry = sd::tasks::builtin_registry();
  sd::tasks::TaskOutcome outcome;
  if (type == "sleep") {
    // Running sleep for real would stall the start by `ms`. With the stop already
    // requested, the task still validates its input but returns at once; a valid `ms`
    // then comes back as `timeout`, and its result is known: {"slept_ms":ms}.
    std::stop_source stopped;
    stopped.request_stop();
    sd::tasks::TaskContext ctx;
    ctx.stop = stopped.get_token();
    outcome = registry.run(type, v.get_object(), ctx);
    if (outcome.ok || outcome.code == sd::proto::ErrorCode::timeout) {
      outcome = sd::tasks::TaskOutcome::success(
          "{\"slept_ms\":" + boost::json::serialize(v.get_object().at("ms")) + "}");
    }
  } else {
    outcome = registry.run(type, v.get_object(), sd::tasks::TaskContext{});
  }
  Expectation e;
  e.ok = outcome.ok;
  if (e.ok) {
    e.result = std::move(outcome.result_json);
    auto canonical = sd::bench::canonical_json(e.result);
    if (!canonical) {
      error = "the local task produced invalid JSON: " + e.result.substr(0, 200);
      return std::nullopt;
    }
    e.canonical = std::move(*canonical);
  } else {
    e.code = std::string(sd::proto::to_string(outcome.code));
    e.message = std::move(outcome.message);
  }
  return e;
}

// --------------------------------------------------------------------------- connections

/// One TCP connection to the server. Owns its fd.
struct Conn {
  int fd = -1;
  int index = 0;
  sd::proto::FrameDecoder decoder{kMaxReplyBytes};
  std::string out;          ///< unsent bytes start at out_pos
  std::size_t out_pos = 0;
  int inflight = 0;
  bool open = false;
  bool want_out = false;    ///< EPOLLOUT registered: a partial write is pending

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (fd >= 0) ::close(fd);
  }
};

/// Connects with a bounded wait (a blocking connect to an unreachable host can hang for
/// minutes). Returns the non-blocking fd or -1 with `error` set.
int connect_to(const std::string& host, int port, std::int64_t deadline, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    error = fmt::format("cannot resolve {}: {}", host, ::gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const auto wait_ms = std::max<std::int64_t>(0, (deadline - now_ns()) / 1'000'000);
      rc = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(wait_ms, 1 << 30)));
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (rc == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
        rc = 0;
      } else {
        errno = rc == 0 ? ETIMEDOUT : soerr;
        rc = -1;
      }
    }
    if (rc == 0) break;
    error = fmt::format("connect {}:{}: {}", host, port, std::strerror(errno));
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd >= 0) {
    // Small messages one at a time (sequential runs) must not wait for Nagle.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

// --------------------------------------------------------------------------- results

struct PhaseStats {
  std::uint64_t tasks = 0;   ///< planned (--tasks) or sent (--duration)
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::map<std::string, std::uint64_t> errors_by_code;
  std::uint64_t lost = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t unexpected = 0;
  std::int64_t elapsed_ns = 0;
  std::vector<std::int64_t> latency_ns;  ///< one per answered task
  bool timed_out = false;
  bool interrupted = false;
  int conns_lost = 0;

  [[nodiscard]] bool all_ok() const {
    return ok == tasks && errors == 0 && lost == 0 && duplicates == 0 && unexpected == 0 &&
           !timed_out && !interrupted && conns_lost == 0;
  }
};

// --------------------------------------------------------------------------- the engine

class Bench {
 public:
  Bench(const Options& o, std::string task_data, Expectation expected)
      : o_(o), task_data_(std::move(task_data)), expected_(std::move(expected)) {
    std::random_device rd;
    run_id_ = fmt::format("{:08x}{:04x}", rd(), rd() & 0xffffu);
  }

  /// Opens every connection (and authenticates it when a token is set).
  /// Returns false with a message on stderr.
  bool connect_all(std::int64_t deadline) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) {
      std::perror("epoll_create1");
      return false;
    }
    conns_.reserve(static_cast<std::size_t>(o_.conns));
    for (int i = 0; i < o_.conns; ++i) {
      auto& c = conns_.emplace_back(std::make_unique<Conn>());
      c->index = i;
      std::string error;
      c->fd = connect_to(o_.host, o_.port, deadline, error);
      if (c->fd < 0) {
        std::fprintf(stderr, "sd-bench: %s\n", error.c_str());
        return false;
      }
      c->open = true;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<std::uint32_t>(i);
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c->fd, &ev);
      if (!o_.token.empty() && !authenticate(*c, deadline)) return false;
    }
    return true;
  }

  /// Runs one phase: `count` tasks, or as many as fit before `stop_sending_at` when
  /// count is 0; then waits for the outstanding replies until `deadline`.
  PhaseStats run_phase(char tag, std::uint64_t count, std::int64_t stop_sending_at,
                       std::int64_t deadline) {
    stats_ = PhaseStats{};
    count_ = count;
    stop_sending_at_ = stop_sending_at;
    id_prefix_ = fmt::format("{}.{}.", run_id_, tag);
    line_head_ = "{\"type\":\"TASK\",\"task_id\":\"" + id_prefix_;
    line_tail_ = "\",\"task_type\":";
    sd::proto::append_json_string(line_tail_, o_.type);
    line_tail_ += ",\"task_data\":" + task_data_ + "}\n";
    const std::size_t reserve = count != 0 ? count : 1u << 16;  // --duration: grows as needed
    state_.clear();
    sent_ns_.clear();
    owner_.clear();
    state_.reserve(reserve);
    sent_ns_.reserve(reserve);
    owner_.reserve(reserve);
    stats_.latency_ns.reserve(reserve);
    for (auto& c : conns_) c->inflight = 0;
    stranded_ = 0;

    const std::int64_t t0 = now_ns();
    for (auto& c : conns_) fill(*c, t0);
    std::vector<epoll_event> events(std::max<std::size_t>(16, conns_.size()));
    for (;;) {
      const std::int64_t now = now_ns();
      if (finished(now)) break;
      if (open_conns() == 0) break;
      if (g_stop != 0) {
        stats_.interrupted = true;
        break;
      }
      if (now >= deadline) {
        stats_.timed_out = true;
        break;
      }
      // Wake up at the deadline, and in --duration mode at the end of sending.
      std::int64_t wake = deadline;
      if (count_ == 0 && now < stop_sending_at_) wake = std::min(wake, stop_sending_at_);
      const int wait_ms = static_cast<int>(std::min<std::int64_t>((wake - now) / 1'000'000 + 1, 1000));
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), wait_ms);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("epoll_wait");
        stats_.interrupted = true;
        break;
      }
      for (int k = 0; k < n; ++k) {
        Conn& c = *conns_[events[static_cast<std::size_t>(k)].data.u32];
        const std::uint32_t ev = events[static_cast<std::size_t>(k)].events;
        if (c.open && (ev & EPOLLOUT) != 0) flush(c);
        if (c.open && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) read_all(c);
        if (c.open) fill(c, now_ns());
      }
    }
    stats_.elapsed_ns = now_ns() - t0;
    stats_.tasks = count_ != 0 ? count_ : stats_.sent;
    stats_.lost = stats_.tasks - stats_.answered;
    return std::move(stats_);
  }

 private:
  enum : std::uint8_t { kSent = 1, kDone = 2 };

  /// Done when every task has its reply or can no longer get one (its connection is
  /// gone: the server answers a task only on the connection that sent it).
  [[nodiscard]] bool finished(std::int64_t now) const {
    const std::uint64_t settled = stats_.answered + stranded_;
    if (count_ != 0) return settled == count_;
    return now >= stop_sending_at_ && settled == stats_.sent;
  }

  [[nodiscard]] int open_conns() const {
    int n = 0;
    for (const auto& c : conns_) n += c->open ? 1 : 0;
    return n;
  }

  /// Sends PING with the token and waits for PONG, before the clock starts.
  bool authenticate(Conn& c, std::int64_t deadline) {
    std::string ping = "{\"type\":\"PING\",\"token\":";
    sd::proto::append_json_string(ping, o_.token);
    ping += "}\n";
    if (::send(c.fd, ping.data(), ping.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(ping.size())) {
      std::fprintf(stderr, "sd-bench: sending PING: %s\n", std::strerror(errno));
      return false;
    }
    for (;;) {
      sd::proto::Frame f = c.decoder.next();
      if (f.kind == sd::proto::Frame::Kind::message) {
        Reply r;
        if (sd::bench::scan_reply(f.text, r) && r.type == "PONG") return true;
        std::fprintf(stderr, "sd-bench: authentication refused: %.*s\n",
                     static_cast<int>(std::min<std::size_t>(f.text.size(), 300)), f.text.data());
        return false;
      }
      if (f.kind == sd::proto::Frame::Kind::error) {
        std::fprintf(stderr, "sd-bench: bad reply to PING\n");
        return false;
      }
      pollfd p{c.fd, POLLIN, 0};
      const auto wait_ms = std::max<std::int64_t>(0, (deadline - now_ns()) / 1'000'000);
      if (::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(wait_ms, 1 << 30))) <= 0) {
        std::fprintf(stderr, "sd-bench: no reply to PING before the timeout\n");
        return false;
      }
      char* buf = c.decoder.prepare(4096);
      const ssize_t n = ::recv(c.fd, buf, 4096, 0);
      if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
        std::fprintf(stderr, "sd-bench: connection closed during authentication\n");
        return false;
      }
      c.decoder.commit(n > 0 ? static_cast<std::size_t>(n) : 0);
    }
  }

  /// Appends as many TASK lines as the window allows, then writes them in one send().
  void fill(Conn& c, std::int64_t now) {
    int room = o_.inflight - c.inflight;
    if (room <= 0) return;
    if (count_ != 0) {
      room = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(room), count_ - stats_.sent));
    } else if (now >= stop_sending_at_) {
      return;
    }
    if (room <= 0) return;
    char digits[24];
    for (int i = 0; i < room; ++i) {
      const std::uint64_t id = stats_.sent++;
      const auto end = std::to_chars(digits, digits + sizeof digits, id).ptr;
      c.out.append(line_head_);
      c.out.append(digits, end);
      c.out.append(line_tail_);
      state_.push_back(kSent);
      sent_ns_.push_back(now);
      owner_.push_back(static_cast<std::uint32_t>(c.index));
    }
    c.inflight += room;
    // While a partial write is pending, EPOLLOUT sends everything in one go later.
    if (!c.want_out) flush(c);
  }

  void flush(Conn& c) {
    while (c.out_pos < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_pos += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      lose(c, std::strerror(errno));
      return;
    }
    const bool pending = c.out_pos < c.out.size();
    if (!pending) {
      c.out.clear();
      c.out_pos = 0;
    }
    if (pending != c.want_out) {
      c.want_out = pending;
      epoll_event ev{};
      ev.events = EPOLLIN | (pending ? static_cast<std::uint32_t>(EPOLLOUT) : 0u);
      ev.data.u32 = static_cast<std::uint32_t>(c.index);
      ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    }
  }

  void read_all(Conn& c) {
    for (;;) {
      char* buf = c.decoder.prepare(kReadChunk);
      const ssize_t n = ::recv(c.fd, buf, kReadChunk, 0);
      if (n > 0) {
        c.decoder.commit(static_cast<std::size_t>(n));
        const std::int64_t t = now_ns();  // one clock read per batch of replies
        for (;;) {
          sd::proto::Frame f = c.decoder.next();
          if (f.kind == sd::proto::Frame::Kind::incomplete) break;
          if (f.kind == sd::proto::Frame::Kind::error) {
            ++stats_.unexpected;
            note("undecodable bytes from the server", f.detail);
            if (f.fatal) {
              lose(c, "reply too large");
              return;
            }
            continue;
          }
          handle_reply(c, f.text, t);
        }
        // A short read means the socket is drained; level-triggered epoll reports more.
        if (static_cast<std::size_t>(n) < kReadChunk) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      lose(c, n == 0 ? "closed by the server" : std::strerror(errno));
      return;
    }
  }

  void lose(Conn& c, std::string_view why) {
    // Mid-phase (the only time sd-bench reads), a closed connection is a server failure
    // even with nothing in flight: the server must keep its clients.
    std::fprintf(stderr, "sd-bench: connection %d lost (%.*s) with %d tasks in flight\n", c.index,
                 static_cast<int>(why.size()), why.data(), c.inflight);
    ++stats_.conns_lost;
    stranded_ += static_cast<std::uint64_t>(c.inflight);
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.open = false;
  }

  void note(std::string_view what, std::string_view text) {
    if (notes_ >= kMaxNotes) return;
    ++notes_;
    std::fprintf(stderr, "sd-bench: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
                 static_cast<int>(std::min<std::size_t>(text.size(), 300)), text.data());
  }

  /// Shows where a wrong result departs from the expected one: results can be megabytes,
  /// and the difference is rarely in the first line.
  void note_mismatch(std::string_view task_id, std::string_view got) {
    if (notes_ >= kMaxNotes) return;
    ++notes_;
    const std::string_view want = expected_.ok ? std::string_view(expected_.result) : std::string_view("(an error)");
    const std::size_t at = static_cast<std::size_t>(
        std::mismatch(got.begin(), got.end(), want.begin(), want.end()).first - got.begin());
    const std::size_t from = at > 60 ? at - 60 : 0;
    auto around = [&](std::string_view t) { return t.substr(std::min(from, t.size()), 120); };
    std::fprintf(stderr,
                 "sd-bench: result mismatch for %.*s at byte %zu of %zu (expected %zu bytes):\n"
                 "  got      ...%.*s...\n  expected ...%.*s...\n",
                 static_cast<int>(task_id.size()), task_id.data(), at, got.size(), want.size(),
                 static_cast<int>(around(got).size()), around(got).data(),
                 static_cast<int>(around(want).size()), around(want).data());
  }

  /// The task index in an id of this phase, or nullopt.
  [[nodiscard]] std::optional<std::uint64_t> task_index(std::string_view id) const {
    if (id.size() <= id_prefix_.size() || id.substr(0, id_prefix_.size()) != id_prefix_) return std::nullopt;
    std::uint64_t n = 0;
    const char* first = id.data() + id_prefix_.size();
    const char* last = id.data() + id.size();
    const auto [ptr, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || ptr != last || n >= stats_.sent) return std::nullopt;
    return n;
  }

  void error(std::string_view code) {
    ++stats_.errors;
    ++stats_.errors_by_code[std::string(code.empty() ? "unknown" : code)];
  }

  void handle_reply(Conn& c, std::string_view text, std::int64_t t) {
    if (!sd::bench::scan_reply(text, reply_)) {
      ++stats_.unexpected;
      note("reply that is not a JSON object", text);
      return;
    }
    // The seed's reference server writes RESULTs without "type"; accept those too.
    const bool is_result = reply_.type == "RESULT" || (reply_.type.empty() && !reply_.status.empty());
    const bool is_error = reply_.type == "ERROR";
    if (!is_result && !is_error) {
      ++stats_.unexpected;
      note("unexpected message", text);
      return;
    }
    const auto id = task_index(reply_.task_id);
    if (!id || owner_[*id] != static_cast<std::uint32_t>(c.index)) {
      ++stats_.unexpected;
      note(id                               ? "reply on the wrong connection"
           : is_error && !reply_.has_task_id ? "ERROR not tied to a task"
                                             : "reply for no task of ours",
           text);
      return;
    }
    if (state_[*id] == kDone) {
      ++stats_.duplicates;
      note("second reply for one task", text);
      return;
    }
    state_[*id] = kDone;
    ++stats_.answered;
    --c.inflight;
    stats_.latency_ns.push_back(t - sent_ns_[*id]);
    if (is_error) {
      error(reply_.code);
      note("ERROR", text);
    } else if (reply_.status == "success") {
      if (result_matches(reply_.result)) {
        ++stats_.ok;
      } else {
        error("result_mismatch");
        note_mismatch(reply_.task_id, reply_.result);
      }
    } else if (reply_.status == "error") {
      error(reply_.error_code);
      note("task failed", text);
    } else {
      error("bad_status");
      note("reply with an unknown status", text);
    }
  }

  bool result_matches(std::string_view result) {
    if (!expected_.ok) return false;
    if (result == expected_.result) return true;
    // Another server may format the same value differently; once one such text has been
    // found equal, later identical texts are accepted at the cost of a compare.
    if (!equivalent_.empty() && result == equivalent_) return true;
    auto canonical = sd::bench::canonical_json(result);
    if (!canonical || *canonical != expected_.canonical) return false;
    equivalent_.assign(result);
    return true;
  }

  const Options& o_;
  std::string task_data_;
  Expectation expected_;
  std::string equivalent_;
  std::string run_id_;
  int epoll_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;

  // Per phase.
  PhaseStats stats_;
  std::uint64_t count_ = 0;
  std::int64_t stop_sending_at_ = 0;
  std::uint64_t stranded_ = 0;         ///< in flight on connections that were lost
  std::string id_prefix_, line_head_, line_tail_;
  std::vector<std::uint8_t> state_;    ///< by task index: kSent or kDone
  std::vector<std::int64_t> sent_ns_;  ///< by task index
  std::vector<std::uint32_t> owner_;   ///< by task index: the connection it was sent on
  Reply reply_;                        ///< reused: its buffers survive from reply to reply
  int notes_ = 0;

 public:
  ~Bench() {
    if (epoll_ >= 0) ::close(epoll_);
  }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;
};

// --------------------------------------------------------------------------- report

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;  // microseconds
};

/// Nearest-rank percentiles.
Percentiles percentiles(std::vector<std::int64_t>& v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    rank = std::clamp<std::size_t>(rank, 1, v.size());
    return static_cast<double>(v[rank - 1]) / 1000.0;
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  p.max = static_cast<double>(v.back()) / 1000.0;
  return p;
}

void report(const Options& o, const std::string& task_data, const char* phase, PhaseStats& s) {
  const Percentiles p = percentiles(s.latency_ns);
  const double secs = static_cast<double>(s.elapsed_ns) / 1e9;
  const double rate = secs > 0 ? static_cast<double>(s.ok) / secs : 0.0;
  if (o.json) {
    std::string by_code = "{";
    for (const auto& [code, n] : s.errors_by_code) {
      if (by_code.size() > 1) by_code += ',';
      sd::proto::append_json_string(by_code, code);
      by_code += fmt::format(":{}", n);
    }
    by_code += '}';
    std::string type_json, host_json;
    sd::proto::append_json_string(type_json, o.type);
    sd::proto::append_json_string(host_json, o.host);
    fmt::print(
        "{{\"phase\":\"{}\",\"host\":{},\"port\":{},\"type\":{},\"task_data\":{},\"conns\":{},"
        "\"inflight\":{},\"tasks\":{},\"sent\":{},\"ok\":{},\"errors\":{},\"errors_by_code\":{},"
        "\"lost\":{},\"duplicates\":{},\"unexpected\":{},\"conns_lost\":{},\"elapsed_s\":{:.6f},"
        "\"throughput\":{:.1f},\"latency_us\":{{\"p50\":{:.1f},\"p90\":{:.1f},\"p99\":{:.1f},"
        "\"p99_9\":{:.1f},\"max\":{:.1f}}},\"timed_out\":{},\"interrupted\":{}}}\n",
        phase, host_json, o.port, type_json, task_data, o.conns, o.inflight, s.tasks, s.sent, s.ok,
        s.errors, by_code, s.lost, s.duplicates, s.unexpected, s.conns_lost, secs, rate, p.p50,
        p.p90, p.p99, p.p999, p.max, s.timed_out, s.interrupted);
  } else {
    fmt::print("sd-bench {} {} -> {}:{}, {} conn x {} in flight{}\n", o.type, task_data, o.host,
               o.port, o.conns, o.inflight, std::string_view(phase) == "run" ? "" : " (warmup)");
    fmt::print("  tasks       {}\n  ok          {}\n  errors      {}\n", s.tasks, s.ok, s.errors);
    for (const auto& [code, n] : s.errors_by_code) fmt::print("    {:<22}{}\n", code, n);
    fmt::print("  lost        {}\n  duplicates  {}\n  unexpected  {}\n", s.lost, s.duplicates,
               s.unexpected);
    if (s.conns_lost != 0) fmt::print("  conns lost  {}\n", s.conns_lost);
    fmt::print("  elapsed     {:.3f} s{}\n  throughput  {:.1f} tasks/s\n", secs,
               s.timed_out ? " (TIMEOUT)" : s.interrupted ? " (interrupted)" : "", rate);
    fmt::print("  latency us  p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}\n", p.p50,
               p.p90, p.p99, p.p999, p.max);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"sd-bench: load generator for the distributed task server; verifies every result"};
  // A later occurrence wins, so scripts can append to a base command line.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--host", o.host, "server host")->capture_default_str();
  app.add_option("--port,-p", o.port, "server port")->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--conns,-c", o.conns, "TCP connections")->check(CLI::Range(1, 10000))->capture_default_str();
  app.add_option("--inflight,-P", o.inflight, "outstanding tasks per connection (1 = sequential)")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  auto* tasks = app.add_option("--tasks,-n", o.tasks, "tasks to run")
                    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}))
                    ->capture_default_str();
  auto duration_check = CLI::Validator(
      [](std::string& s) { return sd::parse_duration(s) ? std::string{} : "not a duration: " + s; },
      "DURATION");
  app.add_option("--duration,-d", o.duration, "send for this long (10s, 500ms, 1m) instead of --tasks")
      ->check(duration_check)
      ->excludes(tasks);
  app.add_option("--type,-t", o.type, "task type")
      ->check(CLI::IsMember({"reverse", "hash", "fibonacci", "compute", "sleep"}))
      ->capture_default_str();
  app.add_option("--payload", o.payload,
                 "text for reverse/hash (\"hola mundo\"), n for fibonacci (10), iterations for "
                 "compute (1000), ms for sleep (10)");
  app.add_option("--seed", o.seed, "seed for compute (default: none, i.e. \"\")");
  app.add_option("--data", o.data, "raw task_data JSON object; overrides --payload and --seed");
  app.add_option("--token", o.token, "token sent in a PING first on each connection")->envname("SD_TOKEN");
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  app.add_option("--warmup", o.warmup, "tasks run (and checked) before measuring")->capture_default_str();
  app.add_option("--timeout", o.timeout, "bound on the whole run")->check(duration_check)->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  std::string error;
  const auto task_data = build_task_data(o, error);
  if (!task_data) {
    std::fprintf(stderr, "sd-bench: %s\n", error.c_str());
    return kExitUsage;
  }
  auto expected = expect(o.type, *task_data, error);
  if (!expected) {
    std::fprintf(stderr, "sd-bench: %s\n", error.c_str());
    return kExitUsage;
  }
  if (!expected->ok) {
    // Still run: checking that the server rejects such tasks is a use of its own.
    std::fprintf(stderr, "sd-bench: note: this task fails locally with %s (%s); every reply will "
                         "count as an error\n", expected->code.c_str(), expected->message.c_str());
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR and the loop stops
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  const std::int64_t start = now_ns();
  const std::int64_t deadline = start + sd::parse_duration(o.timeout)->count() * 1'000'000;
  Bench bench(o, *task_data, std::move(*expected));
  if (!bench.connect_all(deadline)) return kExitUsage;

  if (o.warmup != 0) {
    PhaseStats w = bench.run_phase('w', o.warmup, 0, deadline);
    if (!w.all_ok()) {
      std::fprintf(stderr, "sd-bench: the warmup failed; no measurement\n");
      report(o, *task_data, "warmup", w);
      return kExitFailed;
    }
  }
  PhaseStats s;
  if (o.duration.empty()) {
    s = bench.run_phase('m', o.tasks, 0, deadline);
  } else {
    const std::int64_t stop_at = now_ns() + sd::parse_duration(o.duration)->count() * 1'000'000;
    s = bench.run_phase('m', 0, std::min(stop_at, deadline), deadline);
  }
  report(o, *task_data, "run", s);
  return s.all_ok() ? kExitOk : kExitFailed;
}
