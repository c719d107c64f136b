#pragma once

// Test support: a TCP forwarder on 127.0.0.1 that passes bytes from an
// upstream to its clients at a fixed rate, so that a download the test
// watches takes long enough to be observed on any machine (a fast local
// registry otherwise finishes between two polls).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace osb::test {

class throttle_proxy {
public:
  /// Forwards 127.0.0.1:port() to 127.0.0.1:`upstream_port`; bytes towards
  /// the client flow at most `bytes_per_second` per connection.
  throttle_proxy(uint16_t upstream_port, size_t bytes_per_second)
    : upstream_port_(upstream_port), rate_(bytes_per_second) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr = loopback(0);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listener_, 64);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread{[this] { accept_loop(); }};
  }

  ~throttle_proxy() {
    stop_ = true;
    acceptor_.join();
    ::close(listener_);
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& t : pumps_)
      t.join();
  }

  throttle_proxy(const throttle_proxy&) = delete;
  throttle_proxy& operator=(const throttle_proxy&) = delete;

  uint16_t port() const {
    return port_;
  }

private:
  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  void accept_loop() {
    while (!stop_) {
      pollfd pfd{listener_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0)
        continue;
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0)
        continue;
      int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
      auto addr = loopback(upstream_port_);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr),
                    sizeof(addr))
          != 0) {
        ::close(upstream);
        ::close(client);
        continue;
      }
      std::lock_guard<std::mutex> guard{mtx_};
      pumps_.emplace_back([this, client, upstream] { pump(client, upstream); });
    }
  }

  /// Copies both ways until either side closes; the upstream -> client
  /// direction is paced in 10 ms slices.
  void pump(int client, int upstream) {
    using clock = std::chrono::steady_clock;
    const size_t slice = std::max<size_t>(1, rate_ / 100);
    std::vector<char> buf(slice);
    auto next = clock::now();
    bool open = true;
    while (open && !stop_) {
      pollfd pfds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      if (::poll(pfds, 2, 50) <= 0)
        continue;
      if (pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        auto n = ::recv(client, buf.data(), buf.size(), 0);
        open = n > 0 && send_all(upstream, buf.data(), size_t(n));
      }
      if (open && (pfds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        std::this_thread::sleep_until(next);
        auto n = ::recv(upstream, buf.data(), slice, 0);
        open = n > 0 && send_all(client, buf.data(), size_t(n));
        next = std::max(next, clock::now() - std::chrono::milliseconds(10))
               + std::chrono::microseconds(n > 0 ? n * 1000000 / rate_ : 0);
      }
    }
    ::close(client);
    ::close(upstream);
  }

  static bool send_all(int fd, const char* data, size_t size) {
    while (size > 0) {
      auto n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      data += n;
      size -= size_t(n);
    }
    return true;
  }

  uint16_t upstream_port_;
  size_t rate_;
  uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mtx_;
  std::vector<std::thread> pumps_;
};

} // namespace osb::test
