#pragma once
/// A TCP proxy a test can cut: between a store and its database server, stop() makes the
/// server look down (connections reset, new ones refused), start() brings it back on
/// the same port. Test-only; one thread serving every connection with poll().

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sd::store::testing {

class TcpProxy {
 public:
  /// Forwards 127.0.0.1:port() to upstream_host:upstream_port. Not yet listening.
  TcpProxy(std::string upstream_host, std::uint16_t upstream_port)
      : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {}
  ~TcpProxy() { stop(); }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  /// Listens (on the port of the previous start, if any) and serves until stop().
  void start() {
    stop();
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) throw std::runtime_error("proxy: socket");
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 16) != 0) {
      throw std::runtime_error("proxy: cannot listen on port " + std::to_string(port_));
    }
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("proxy: pipe");
    thread_ = std::thread([this] { serve(); });
  }

  /// Closes the listener and every proxied connection; returns once they are closed.
  void stop() {
    if (!thread_.joinable()) return;
    const char byte = 0;
    [[maybe_unused]] auto n = ::write(wake_[1], &byte, 1);
    thread_.join();
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

  std::uint16_t port() const { return port_; }

 private:
  int connect_upstream() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(upstream_port_);
    ::inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (fd >= 0) ::close(fd);
    return -1;
  }

  void serve() {
    std::vector<std::pair<int, int>> pairs;  // (client, upstream)
    for (;;) {
      std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listener_, POLLIN, 0}};
      for (auto [a, b] : pairs) {
        fds.push_back({a, POLLIN, 0});
        fds.push_back({b, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 10'000) < 0) continue;
      if (fds[0].revents != 0) break;
      // Pump the pairs that were polled, then add a connection accepted this round.
      std::vector<std::pair<int, int>> alive;
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        const auto [a, b] = pairs[i];
        if (pump(fds[2 + 2 * i], b) && pump(fds[3 + 2 * i], a)) {
          alive.emplace_back(a, b);
        } else {
          ::close(a);
          ::close(b);
        }
      }
      if (fds[1].revents & POLLIN) {
        const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) {
          const int upstream = connect_upstream();
          if (upstream >= 0) {
            alive.emplace_back(client, upstream);
          } else {
            ::close(client);
          }
        }
      }
      pairs.swap(alive);
    }
    for (auto [a, b] : pairs) {
      ::close(a);
      ::close(b);
    }
    ::close(listener_);
    listener_ = -1;
  }

  // Moves what `from` has to `to`; false when either side is done.
  static bool pump(const pollfd& from, int to) {
    if ((from.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return true;
    char buf[65536];
    const ssize_t n = ::read(from.fd, buf, sizeof buf);
    if (n <= 0) return false;
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
      if (w <= 0) return false;
      off += w;
    }
    return true;
  }

  std::string upstream_host_;
  std::uint16_t upstream_port_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace sd::store::testing
