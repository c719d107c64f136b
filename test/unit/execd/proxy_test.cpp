// execd's /proxy over real HTTP: in-process to its own port, relayed to
// other ports (bodies, streams, WebSocket upgrades, failures).

#include "test/unit/execd/http_client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

using namespace osb::execd;
using namespace osb::execd::test;

namespace {

/// A tiny HTTP/1.1 upstream for the proxy tests.
class upstream {
public:
  upstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 16);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    thread_ = std::thread{[this] { loop(); }};
  }

  ~upstream() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }

  uint16_t port = 0;
  std::atomic<int> requests{0};

  /// Lets /stream send its second event.
  void release_stream() {
    release_.set_value();
  }

private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0)
        continue;
      std::thread{[this, c] { serve(c); }}.detach();
    }
  }

  void serve(int c) {
    std::string buf;
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
      if (!fill(c, buf)) {
        ::close(c);
        return;
      }
    ++requests;
    auto head = buf.substr(0, end);
    buf.erase(0, end + 4);
    auto lower = osb::lower(head);
    auto target = head.substr(head.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    auto header = [&](const std::string& name) {
      auto i = lower.find("\r\n" + name + ":");
      if (i == std::string::npos)
        return std::string{};
      auto v = head.substr(i + name.size() + 3);
      v = v.substr(0, v.find("\r\n"));
      while (!v.empty() && v[0] == ' ')
        v.erase(0, 1);
      return v;
    };
    std::string body;
    if (osb::lower(header("transfer-encoding")) == "chunked") {
      for (;;) {
        size_t le;
        while ((le = buf.find("\r\n")) == std::string::npos)
          fill(c, buf);
        auto size = std::stoul(buf.substr(0, le), nullptr, 16);
        while (buf.size() < le + 4 + size)
          fill(c, buf);
        body += buf.substr(le + 2, size);
        buf.erase(0, le + 4 + size);
        if (size == 0)
          break;
      }
    } else if (!header("content-length").empty()) {
      auto len = std::stoul(header("content-length"));
      while (buf.size() < len)
        fill(c, buf);
      body = buf.substr(0, len);
    }
    if (target.rfind("/stream", 0) == 0) {
      // Close-delimited SSE-like body; the second event only once the test
      // has seen the first (or after 10 s).
      send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                  "data: 1\n\n");
      stream_release.wait_for(std::chrono::seconds(10));
      send_all(c, "data: 2\n\n");
    } else if (target.rfind("/ws", 0) == 0) {
      send_all(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\n\r\n");
      // Echo until EOF.
      std::string data = buf;
      if (!data.empty())
        send_all(c, data);
      char tmp[4096];
      for (;;) {
        auto n = ::recv(c, tmp, sizeof(tmp), 0);
        if (n <= 0)
          break;
        send_all(c, std::string_view{tmp, static_cast<size_t>(n)});
      }
    } else {
      auto text = "target=" + target + " xff=" + header("x-forwarded-for")
                  + " proto=" + header("x-forwarded-proto") + " host="
                  + header("x-forwarded-host") + " token="
                  + header("x-execd-access-token") + " body=" + body;
      send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: "
                    + std::to_string(text.size())
                    + "\r\nX-Upstream: yes\r\n\r\n" + text);
    }
    ::close(c);
  }

  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::promise<void> release_;
  std::shared_future<void> stream_release = release_.get_future().share();
};

} // namespace

TEST_F(ExecdHttp, ProxyToOwnPortLoopsBack) {
  auto r = request(port, "GET", "/proxy/" + std::to_string(port) + "/ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  // Nested and with a query.
  auto p = std::to_string(port);
  r = request(port, "GET", "/proxy/" + p + "/proxy/" + p + "/files/info?path="
                             + osb::percent_decode("%2Fetc"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"/etc\":{\"path\":\"/etc\""), std::string::npos)
    << r.body;
}

TEST_F(ExecdHttp, ProxyRelaysToUpstream) {
  upstream up;
  auto base = "/proxy/" + std::to_string(up.port);
  auto r = request(port, "POST", base + "/hello/world?x=1&y=2", "payload",
                   "X-Forwarded-Host: evil\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-upstream"), "yes");
  EXPECT_EQ(r.body, "target=/hello/world?x=1&y=2 xff=127.0.0.1 proto=http "
                    "host= token= body=payload");
  r = request(port, "GET", base, "", "X-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n");
  EXPECT_EQ(r.body, "target=/ xff=1.2.3.4 proto=http host= token= body=");
  // A chunked request body is relayed.
  int fd = connect_to(port);
  send_all(fd, "POST " + base + "/c HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  std::string buf;
  auto c = read_response(fd, buf);
  EXPECT_EQ(c.body, "target=/c xff=127.0.0.1 proto=http host= token= "
                    "body=abcdefg");
  // Keep-alive to the client survives the proxied exchange.
  send_all(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_response(fd, buf).status, 200);
  ::close(fd);
}

TEST_F(ExecdHttp, ProxyBadGateway) {
  upstream up;
  auto dead = up.port;
  {
    // Find a port nobody listens on.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    dead = ntohs(addr.sin_port);
    ::close(fd);
  }
  auto r = request(port, "GET", "/proxy/" + std::to_string(dead) + "/x");
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.body, "Bad Gateway");
  r = request(port, "GET", "/proxy/notaport/x");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ExecdHttp, ProxyFlushesStreamsPromptly) {
  upstream up;
  int fd = connect_to(port);
  auto start = std::chrono::steady_clock::now();
  send_all(fd, "GET /proxy/" + std::to_string(up.port)
                 + "/stream HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string buf;
  while (buf.find("data: 1") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  // The first event arrives before the upstream sends the second.
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(400));
  EXPECT_EQ(buf.find("data: 2"), std::string::npos);
  EXPECT_NE(osb::lower(buf).find("transfer-encoding: chunked"),
            std::string::npos);
  up.release_stream();
  while (buf.find("0\r\n\r\n") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  EXPECT_NE(buf.find("data: 2"), std::string::npos);
  ::close(fd);
}

TEST_F(ExecdHttp, ProxyRelaysWebSocketUpgrade) {
  upstream up;
  int fd = connect_to(port);
  send_all(fd, "GET /proxy/" + std::to_string(up.port)
                 + "/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  std::string buf;
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.status, 101);
  EXPECT_EQ(osb::lower(r.header("upgrade")), "websocket");
  send_all(fd, "ping-frame");
  while (buf.find("ping-frame") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  send_all(fd, "second");
  while (buf.find("second") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  ::close(fd);
}
