// The HTTP server's defences: connection-limit eviction, header timeout,
// RFC 9112 framing of requests and of proxied upstream responses.

#include "http/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace osb::http;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    off += static_cast<size_t>(n);
  }
}

/// Reads until the peer closes or `timeout` passes; `closed` tells which.
std::string read_until_close(int fd, std::chrono::milliseconds timeout,
                             bool& closed) {
  std::string out;
  closed = false;
  auto deadline = clock_type::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - clock_type::now())
                  .count();
    if (left <= 0)
      return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) != 1)
      return out;
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      closed = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

/// Reads one response with a Content-Length body ("" on EOF/timeout).
std::string read_response(int fd, std::string& buf) {
  char tmp[4096];
  for (;;) {
    auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t len = 0;
      auto pos = buf.find("Content-Length: ");
      if (pos != std::string::npos && pos < end)
        len = std::stoul(buf.substr(pos + 16));
      if (buf.size() >= end + 4 + len) {
        auto r = buf.substr(0, end + 4 + len);
        buf.erase(0, end + 4 + len);
        return r;
      }
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1)
      return {};
    auto n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0)
      return {};
    buf.append(tmp, static_cast<size_t>(n));
  }
}

/// Whether the server has closed `fd` (EOF readable) within `wait`.
bool closed_within(int fd, std::chrono::milliseconds wait) {
  bool closed = false;
  read_until_close(fd, wait, closed);
  return closed;
}

class ServerLimits : public testing::Test {
protected:
  void start(server_options opts) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    auto srv = server::start(opts, [this](request&& req, responder done) {
      if (req.path == "/hang") {
        std::lock_guard<std::mutex> guard{mtx_};
        held_.push_back(std::move(done));
        ++num_held_;
        held_cv_.notify_all();
        return;
      }
      if (req.streamed) {
        auto fwd = std::make_shared<forward_spec>();
        fwd->port = upstream_port_;
        fwd->target = req.target;
        fwd->on_error = [this](forward_error, const std::string& detail) {
          {
            std::lock_guard<std::mutex> guard{mtx_};
            forward_error_ = detail;
          }
          response r;
          r.status = 502;
          r.body = "bad gateway";
          return r;
        };
        response r;
        r.forward = std::move(fwd);
        return done(std::move(r));
      }
      response res;
      res.body = req.method + " " + req.path + " body=" + req.body;
      done(std::move(res));
    });
    ASSERT_TRUE(srv.has_value()) << srv.error().message;
    srv_ = std::move(*srv);
  }

  void TearDown() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      for (auto& done : held_)
        done(response{});
      held_.clear();
    }
    if (srv_)
      srv_->stop();
    for (auto fd : fds_)
      ::close(fd);
  }

  int open() {
    auto fd = connect_to(srv_->port());
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }

  /// Waits until `n` connections wait for a request (at most 5 s): the
  /// server has accepted them and stamped when they started waiting.
  bool wait_waiting(int64_t n) {
    auto deadline = clock_type::now() + 5s;
    while (srv_->stats().waiting < n) {
      if (clock_type::now() > deadline)
        return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  /// Waits until the application holds `n` requests (at most 5 s).
  bool wait_held(int n) {
    std::unique_lock<std::mutex> lock{mtx_};
    return held_cv_.wait_for(lock, 5s, [&] { return num_held_ >= n; });
  }

  std::unique_ptr<server> srv_;
  std::vector<int> fds_;
  std::mutex mtx_;
  std::vector<responder> held_;
  std::condition_variable held_cv_;
  std::atomic<int> num_held_{0};
  uint16_t upstream_port_ = 0;
  std::string forward_error_;
};

} // namespace

TEST_F(ServerLimits, AtTheLimitTheOldestIdleConnectionMakesRoom) {
  server_options opts;
  opts.limit_concurrency = 2;
  start(opts);
  auto a = open();
  ASSERT_TRUE(wait_waiting(1)); // a waits longer than b
  auto b = open();
  ASSERT_TRUE(wait_waiting(2));
  auto c = open();
  send_all(c, "GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string buf;
  auto r = read_response(c, buf);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_TRUE(closed_within(a, 2000ms));
  EXPECT_FALSE(closed_within(b, 200ms));
}

TEST_F(ServerLimits, EvictionPrefersTheLongestWaitNotTheOldestSocket) {
  server_options opts;
  opts.limit_concurrency = 2;
  start(opts);
  auto a = open(); // accepted first, but then busy with a request
  ASSERT_TRUE(wait_waiting(1));
  auto b = open(); // silent since it connected
  ASSERT_TRUE(wait_waiting(2));
  send_all(a, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string buf;
  ASSERT_NE(read_response(a, buf), "");
  // a waits for its next request since just now, b for longer.
  ASSERT_TRUE(wait_waiting(2));
  auto c = open();
  send_all(c, "GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string cbuf;
  EXPECT_EQ(read_response(c, cbuf).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_TRUE(closed_within(b, 2000ms));
  EXPECT_FALSE(closed_within(a, 200ms));
}

TEST_F(ServerLimits, BusyConnectionsAreNeverEvicted) {
  server_options opts;
  opts.limit_concurrency = 1;
  start(opts);
  auto a = open();
  send_all(a, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_held(1);
  ASSERT_EQ(num_held_, 1);
  auto b = open();
  send_all(b, "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
  bool closed = false;
  auto r = read_until_close(b, 3000ms, closed);
  EXPECT_EQ(r.rfind("HTTP/1.1 503 ", 0), 0u) << r;
  EXPECT_TRUE(closed);
  EXPECT_FALSE(closed_within(a, 100ms));
}

TEST_F(ServerLimits, SilentConnectionClosesAfterTheHeaderTimeout) {
  server_options opts;
  opts.header_timeout_s = 1;
  opts.keep_alive_s = 30;
  start(opts);
  auto fd = open();
  auto t0 = clock_type::now();
  bool closed = false;
  auto r = read_until_close(fd, 5000ms, closed);
  auto waited = clock_type::now() - t0;
  EXPECT_TRUE(closed);
  EXPECT_EQ(r, "");
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 2500ms);
}

TEST_F(ServerLimits, TricklingHeaderIsCutAtTheHeaderTimeout) {
  server_options opts;
  opts.header_timeout_s = 1;
  start(opts);
  auto fd = open();
  auto t0 = clock_type::now();
  std::string head = "GET /slow HTTP/1.1\r\nHost: t\r\nX-Pad: ";
  bool closed = false;
  for (int i = 0; i < 30 && !closed; ++i) {
    send_all(fd, head.substr(0, 1));
    head.append("x");
    head.erase(0, 1);
    read_until_close(fd, 100ms, closed);
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(clock_type::now() - t0, 2500ms);
}

TEST_F(ServerLimits, KeepAlivePauseMayExceedTheHeaderTimeout) {
  server_options opts;
  opts.header_timeout_s = 1;
  opts.keep_alive_s = 5;
  start(opts);
  auto fd = open();
  std::string buf;
  send_all(fd, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_NE(read_response(fd, buf), "");
  std::this_thread::sleep_for(1800ms);
  send_all(fd, "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = read_response(fd, buf);
  EXPECT_NE(r.find("GET /2"), std::string::npos) << r;
}

TEST_F(ServerLimits, AmbiguousFramingIs400AndCloses) {
  start(server_options{});
  struct framing_case {
    std::string fields;
    int status;
  };
  for (auto& x : std::vector<framing_case>{
         {"Transfer-Encoding: chunked, identity\r\n", 400},
         {"Transfer-Encoding: xchunked\r\nContent-Length: 30\r\n", 400},
         {"Transfer-Encoding: chunked\r\nContent-Length: 30\r\n", 400},
         {"Content-Length: 30\r\nContent-Length: 31\r\n", 400},
         {"Transfer-Encoding: gzip, chunked\r\n", 501},
       }) {
    auto fd = open();
    // The body smuggles a second request after a chunked body.
    send_all(fd, "POST /x HTTP/1.1\r\nHost: t\r\n" + x.fields
                   + "\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n"
                     "Host: t\r\n\r\n");
    bool closed = false;
    auto r = read_until_close(fd, 3000ms, closed);
    EXPECT_EQ(r.rfind("HTTP/1.1 " + std::to_string(x.status) + " ", 0), 0u)
      << x.fields << r;
    EXPECT_EQ(r.find("smuggled"), std::string::npos) << x.fields << r;
    EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
    EXPECT_TRUE(closed) << x.fields;
  }
  // HTTP/1.0 with Transfer-Encoding.
  auto fd = open();
  send_all(fd, "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
               "0\r\n\r\n");
  bool closed = false;
  auto r = read_until_close(fd, 3000ms, closed);
  EXPECT_EQ(r.rfind("HTTP/1.1 400 ", 0), 0u) << r;
  EXPECT_TRUE(closed);
}

TEST_F(ServerLimits, ProperlyChunkedRequestStillWorks) {
  start(server_options{});
  auto fd = open();
  send_all(fd, "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
               "\r\n5\r\nhello\r\n0\r\n\r\n");
  std::string buf;
  auto r = read_response(fd, buf);
  EXPECT_NE(r.find("POST /x body=hello"), std::string::npos) << r;
}

TEST_F(ServerLimits, UpstreamResponseWithAmbiguousFramingIs502) {
  // A one-shot upstream answering with Transfer-Encoding and Content-Length.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::listen(lfd, 4);
  socklen_t len = sizeof(addr);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  upstream_port_ = ntohs(addr.sin_port);
  std::thread up{[lfd] {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0)
      return;
    char buf[4096];
    std::string req;
    while (req.find("\r\n\r\n") == std::string::npos) {
      auto n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0)
        break;
      req.append(buf, static_cast<size_t>(n));
    }
    // Beast itself refuses a Content-Length after `chunked`, not after an
    // unknown coding (it would use the length).
    send_all(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n"
                "Content-Length: 5\r\n\r\nhello");
    ::shutdown(c, SHUT_WR);
    bool closed = false;
    read_until_close(c, 3000ms, closed);
    ::close(c);
  }};
  server_options opts;
  opts.streamed = [](std::string_view path) { return path == "/proxied"; };
  start(opts);
  auto fd = open();
  send_all(fd, "GET /proxied HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string buf;
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.rfind("HTTP/1.1 502 ", 0), 0u) << r;
  up.join();
  ::close(lfd);
  std::lock_guard<std::mutex> guard{mtx_};
  EXPECT_NE(forward_error_.find("invalid response framing: both "
                                "Transfer-Encoding and Content-Length"),
            std::string::npos)
    << forward_error_;
}
