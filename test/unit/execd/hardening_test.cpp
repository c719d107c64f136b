// execd against hostile input over real HTTP: deep JSON, out-of-range
// integers, ambiguous framing and silent or trickling connections.

#include "execd/routes.hpp"
#include "execd/server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

using namespace osb::execd;
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

/// Reads until the peer closes or `timeout` passes.
std::string read_until_close(int fd, std::chrono::milliseconds timeout,
                             bool& closed) {
  std::string out;
  closed = false;
  auto deadline = clock_type::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - clock_type::now())
                  .count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1)
      return out;
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      closed = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

class ExecdHardening : public testing::Test {
protected:
  void SetUp() override {
    server_options so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.header_timeout = 1s;
    std::string err;
    srv = http_server::start(so, router{commands, sessions, metrics}, &err);
    ASSERT_TRUE(srv) << err;
    port = srv->port();
  }

  void TearDown() override {
    srv->stop();
  }

  /// One request with `Connection: close`; returns the raw response.
  std::string exchange(const std::string& method, const std::string& target,
                       const std::string& body) {
    int fd = connect_to(port);
    EXPECT_GE(fd, 0);
    send_all(fd, method + " " + target
                   + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     "Content-Length: "
                   + std::to_string(body.size()) + "\r\n\r\n" + body);
    bool closed = false;
    auto r = read_until_close(fd, 10000ms, closed);
    ::close(fd);
    return r;
  }

  bool alive() {
    return exchange("GET", "/ping", "").rfind("HTTP/1.1 200", 0) == 0;
  }

  command_manager commands{"/tmp/execd-hardening-test-logs"};
  session_manager sessions{"/tmp/execd-hardening-test-sessions"};
  metrics_sampler metrics;
  std::unique_ptr<http_server> srv;
  uint16_t port = 0;
};

} // namespace

TEST_F(ExecdHardening, DeepJsonIs400AndExecdStaysUp) {
  // 1,000,000 levels killed execd (stack overflow in RapidJSON).
  auto deep = std::string(1000000, '[') + std::string(1000000, ']');
  for (auto target : {"/command", "/session", "/files/permissions",
                      "/files/mv", "/directories", "/code"}) {
    auto r = exchange("POST", target, deep);
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << target << r.substr(0, 300);
    EXPECT_NE(r.find("nests deeper than 128 levels"), std::string::npos)
      << target << r.substr(0, 300);
  }
  // Through execd's own /proxy loop too (the server proxy's path).
  auto r = exchange("POST", "/proxy/" + std::to_string(port) + "/command",
                    R"({"command":)" + deep + "}");
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r.substr(0, 300);
  EXPECT_TRUE(alive());
}

TEST_F(ExecdHardening, OutOfRangeIntegersAre400) {
  for (std::string body :
       {R"({"command":"true","timeout":9223372036854775808})",
        R"({"command":"true","timeout":1e300})",
        R"({"command":"true","timeout":"99999999999999999999"})",
        R"({"command":"true","timeout":"9223372036854775808"})",
        R"({"command":"true","timeout":9223372036854775807})",
        R"({"command":"true","uid":4294967296})",
        R"({"command":"true","uid":4294967295})",
        R"({"command":"true","uid":18446744073709551615})",
        R"({"command":"true","uid":-1})"}) {
    auto r = exchange("POST", "/command", body);
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << body << "\n" << r;
  }
  auto r = exchange("POST", "/session/none/run",
                    R"({"command":"true","timeout":1e19})");
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
  r = exchange("GET", "/proxy/4294975376/ping", "");
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
  EXPECT_TRUE(alive());
}

TEST_F(ExecdHardening, AmbiguousFramingIs400AndCloses) {
  for (std::string fields :
       {"Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: xchunked\r\nContent-Length: 30\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 30\r\n",
        "Content-Length: 30\r\nContent-Length: 31\r\n"}) {
    int fd = connect_to(port);
    send_all(fd, "POST /ping HTTP/1.1\r\nHost: t\r\n" + fields
                   + "\r\n5\r\nhello\r\n0\r\n\r\nGET /ping HTTP/1.1\r\n"
                     "Host: t\r\n\r\n");
    bool closed = false;
    auto r = read_until_close(fd, 5000ms, closed);
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << fields << r;
    // The smuggled request got no answer of its own.
    EXPECT_EQ(r.find("HTTP/1.1 200"), std::string::npos) << fields << r;
    EXPECT_TRUE(closed) << fields;
    ::close(fd);
  }
  int fd = connect_to(port);
  send_all(fd, "POST /ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, "
               "chunked\r\n\r\n0\r\n\r\n");
  bool closed = false;
  auto r = read_until_close(fd, 5000ms, closed);
  EXPECT_EQ(r.rfind("HTTP/1.1 501", 0), 0u) << r;
  EXPECT_TRUE(closed);
  ::close(fd);
}

TEST_F(ExecdHardening, SilentConnectionClosesAfterTheHeaderTimeout) {
  int fd = connect_to(port);
  auto t0 = clock_type::now();
  bool closed = false;
  auto r = read_until_close(fd, 5000ms, closed);
  auto waited = clock_type::now() - t0;
  EXPECT_TRUE(closed);
  EXPECT_EQ(r, "");
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 2500ms);
  ::close(fd);
}

TEST_F(ExecdHardening, TricklingHeaderIsCutAtTheHeaderTimeout) {
  int fd = connect_to(port);
  auto t0 = clock_type::now();
  bool closed = false;
  for (int i = 0; i < 30 && !closed; ++i) {
    send_all(fd, "G");
    read_until_close(fd, 100ms, closed);
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(clock_type::now() - t0, 2500ms);
  ::close(fd);
}

TEST_F(ExecdHardening, KeepAlivePauseMayExceedTheHeaderTimeout) {
  int fd = connect_to(port);
  send_all(fd, "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n");
  bool closed = false;
  auto r = read_until_close(fd, 500ms, closed);
  ASSERT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  std::this_thread::sleep_for(1800ms);
  send_all(fd, "GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  r = read_until_close(fd, 3000ms, closed);
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  ::close(fd);
}

TEST_F(ExecdHardening, ProxiedResponseWithAmbiguousFramingIs502) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::listen(lfd, 4);
  socklen_t len = sizeof(addr);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto up_port = ntohs(addr.sin_port);
  std::thread up{[lfd] {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0)
      return;
    bool closed = false;
    read_until_close(c, 300ms, closed); // the request
    // Beast would take the Content-Length: the coding is unknown to it.
    send_all(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n"
                "Content-Length: 5\r\n\r\nhello");
    read_until_close(c, 3000ms, closed);
    ::close(c);
  }};
  auto r = exchange("GET", "/proxy/" + std::to_string(up_port) + "/x", "");
  EXPECT_EQ(r.rfind("HTTP/1.1 502", 0), 0u) << r;
  up.join();
  ::close(lfd);
}
