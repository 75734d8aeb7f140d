/// sd-floor: the floor under the scale curve's connection sweeps. Not a server.
///
/// It answers every TASK itself, at once, on its one thread: the project's decoder reads
/// the frame, the project's task code computes the result, the project's encoder writes
/// the RESULT, and one send() per connection and event-loop turn takes the replies out.
/// No workers, no dispatch, no queue, no store, no Asio: only what any server on this
/// machine must pay per task to take a frame in and put a reply out over loopback TCP.
///
/// scripts/scale.py runs the same sd-bench points against it as against servidor. Where
/// servidor falls with the number of connections, the floor shows how much of that fall
/// belongs to the machine (a send and a recv per batch of replies on each side) rather
/// than to servidor: the floor cannot be beaten at any point by any server.
///
///   sd-floor [--host 127.0.0.1] [--port 0]
///
/// Prints "sd-floor listening on HOST:PORT" once it accepts connections, and runs until
/// SIGINT or SIGTERM. A frame that is not a TASK gets an ERROR, as from servidor.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"
#include "tasks/task_registry.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

/// Bytes asked of each recv(), straight into the connection's decoder.
constexpr std::size_t kReadChunk = 64 * 1024;

struct Conn {
  int fd = -1;
  sd::proto::FrameDecoder decoder;
  std::string out;
  bool want_write = false;  ///< EPOLLOUT is registered: out did not fit in the socket
};

class Floor {
 public:
  explicit Floor(int listener) : listener_(listener), registry_(sd::tasks::builtin_registry()) {}

  int run() {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) {
      std::perror("epoll_create1");
      return 1;
    }
    watch(listener_, EPOLLIN, kListener);
    std::vector<epoll_event> events(512);
    while (!g_stop) {
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 200);
      if (n < 0 && errno != EINTR) {
        std::perror("epoll_wait");
        return 1;
      }
      for (int i = 0; i < n; ++i) {
        const std::uint64_t key = events[i].data.u64;
        if (key == kListener) {
          accept_all();
          continue;
        }
        Conn* c = conns_[key].get();
        if (c == nullptr) continue;
        if (events[i].events & EPOLLOUT) send_out(key, *c);
        if (conns_[key] && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_in(key, *c);
      }
    }
    return 0;
  }

 private:
  static constexpr std::uint64_t kListener = ~std::uint64_t{0};

  void watch(int fd, std::uint32_t events, std::uint64_t key, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = key;
    ::epoll_ctl(epoll_, op, fd, &ev);
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: stop watching the listener (level-triggered, it would
          // spin) until a connection closes.
          ::epoll_ctl(epoll_, EPOLL_CTL_DEL, listener_, nullptr);
          listening_ = false;
        }
        return;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      const std::uint64_t key = conns_.size();
      conns_.push_back(std::move(c));
      watch(fd, EPOLLIN, key);
    }
  }

  void read_in(std::uint64_t key, Conn& c) {
    char* room = c.decoder.prepare(kReadChunk);
    const ssize_t n = ::recv(c.fd, room, kReadChunk, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      if (n == 0) send_out(key, c);  // the peer is done sending: what is left goes first
      if (conns_[key]) drop(key);
      return;
    }
    c.decoder.commit(static_cast<std::size_t>(n));
    bool fatal = false;
    while (!fatal) {
      sd::proto::Frame f = c.decoder.next();
      if (f.kind == sd::proto::Frame::Kind::incomplete) break;
      if (f.kind == sd::proto::Frame::Kind::error) {
        sd::proto::encode(c.out, sd::proto::ErrorMsg{f.error, std::string(f.detail), {}});
        fatal = f.fatal;
        continue;
      }
      answer(c, f.text);
    }
    send_out(key, c);
    if (fatal && conns_[key]) drop(key);  // as servidor: a frame too large ends the connection
  }

  void answer(Conn& c, std::string_view frame) {
    auto decoded = sd::proto::decode(frame);
    if (auto* e = std::get_if<sd::proto::DecodeError>(&decoded)) {
      sd::proto::encode(c.out, sd::proto::ErrorMsg{e->code, e->message, e->task_id});
      return;
    }
    auto* task = std::get_if<sd::proto::TaskMsg>(&std::get<sd::proto::Envelope>(decoded).message);
    if (task == nullptr) {
      sd::proto::encode(c.out, sd::proto::ErrorMsg{sd::proto::ErrorCode::unknown_message_type,
                                                   "sd-floor answers TASK messages only", {}});
      return;
    }
    // As a worker runs it: task_data parsed into a DOM, the registry's task, the outcome.
    boost::system::error_code ec;
    boost::json::value data = boost::json::parse(task->task_data, ec);
    sd::tasks::TaskOutcome outcome =
        ec || !data.is_object()
            ? sd::tasks::TaskOutcome::failure(sd::proto::ErrorCode::invalid_task, "'task_data' must be a JSON object")
            : registry_.run(task->task_type, data.get_object(), sd::tasks::TaskContext{});
    sd::proto::ResultMsg r;
    r.task_id = std::move(task->task_id);
    r.ok = outcome.ok;
    r.result = std::move(outcome.result_json);
    r.error_code = outcome.code;
    r.error_message = std::move(outcome.message);
    r.worker_id = "sd-floor";
    sd::proto::encode(c.out, r);
  }

  void send_out(std::uint64_t key, Conn& c) {
    if (!c.out.empty()) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        drop(key);
        return;
      }
      if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
    }
    const bool want_write = !c.out.empty();
    if (want_write != c.want_write) {
      c.want_write = want_write;
      watch(c.fd, EPOLLIN | (want_write ? EPOLLOUT : 0u), key, EPOLL_CTL_MOD);
    }
  }

  void drop(std::uint64_t key) {
    ::close(conns_[key]->fd);  // closing also takes it out of the epoll set
    conns_[key].reset();
    if (!listening_) {
      watch(listener_, EPOLLIN, kListener);
      listening_ = true;
    }
  }

  int listener_;
  bool listening_ = true;  ///< the listener is in the epoll set
  int epoll_ = -1;
  sd::tasks::TaskRegistry registry_;
  std::vector<std::unique_ptr<Conn>> conns_;  ///< by epoll key; a closed one stays null
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sd-floor: answers each TASK inline, the floor under servidor's connection sweeps"};
  std::string host = "127.0.0.1";
  int port = 0;
  app.add_option("--host", host, "address to listen on (IPv4)")->capture_default_str();
  app.add_option("--port", port, "port (0: any free one)")->check(CLI::Range(0, 65535))->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "sd-floor: '%s' is not an IPv4 address\n", host.c_str());
    return 1;
  }
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1024) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("sd-floor: listen");
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  fmt::print("sd-floor listening on {}:{}\n", host, ntohs(addr.sin_port));
  std::fflush(stdout);
  return Floor(listener).run();
}
