#pragma once

// Test support: a relay from a unix socket of the test to another (e.g.
// Docker's), which the test can cut and restore: the server behind it sees
// its Docker daemon become unreachable and come back, while the machine's
// daemon itself is never touched.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace osb::test {

class socket_relay {
public:
  socket_relay(std::string path, std::string upstream)
    : path_(std::move(path)), upstream_(std::move(upstream)) {
    up();
  }

  ~socket_relay() {
    down();
  }

  socket_relay(const socket_relay&) = delete;
  socket_relay& operator=(const socket_relay&) = delete;

  /// The address for `docker.host`.
  std::string url() const {
    return "unix://" + path_;
  }

  /// Starts listening (again).
  void up() {
    if (running_)
      return;
    ::unlink(path_.c_str());
    listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    auto addr = address(path_);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listener_, 64);
    running_ = true;
    acceptor_ = std::thread{[this] { accept_loop(); }};
  }

  /// Closes the listener and every relayed connection: connects are refused
  /// (the socket file is gone) and calls in flight fail.
  void down() {
    if (!running_)
      return;
    running_ = false;
    acceptor_.join();
    ::close(listener_);
    ::unlink(path_.c_str());
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& t : pumps_)
      t.join();
    pumps_.clear();
  }

  /// Holds every chunk of the daemon's answers back by `d` (0 = none).
  void set_delay(std::chrono::milliseconds d) {
    delay_ms_ = static_cast<int>(d.count());
  }

private:
  static sockaddr_un address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    return addr;
  }

  void accept_loop() {
    while (running_) {
      pollfd pfd{listener_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0)
        continue;
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0)
        continue;
      int upstream = ::socket(AF_UNIX, SOCK_STREAM, 0);
      auto addr = address(upstream_);
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

  void pump(int a, int b) {
    char buf[16384];
    bool open = true;
    while (open && running_) {
      pollfd pfds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(pfds, 2, 50) <= 0)
        continue;
      for (int i = 0; i < 2 && open; ++i) {
        if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
          continue;
        auto n = ::recv(pfds[i].fd, buf, sizeof(buf), 0);
        // A slow daemon: its answers arrive late.
        if (auto ms = delay_ms_.load(); i == 1 && n > 0 && ms > 0)
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        open = n > 0 && send_all(i == 0 ? b : a, buf, size_t(n));
      }
    }
    ::close(a);
    ::close(b);
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

  std::string path_;
  std::string upstream_;
  int listener_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<int> delay_ms_{0};
  std::thread acceptor_;
  std::mutex mtx_;
  std::vector<std::thread> pumps_;
};

} // namespace osb::test
