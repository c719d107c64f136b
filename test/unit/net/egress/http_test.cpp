// The policy API over real HTTP on loopback (the shared synchronous server).

#include "net/egress/http_server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>

using namespace osb::egress;

namespace {

class memory_store : public policy_store {
public:
  const policy& current() const override {
    return current_;
  }

  std::optional<std::string> commit(policy next) override {
    current_ = std::move(next);
    return std::nullopt;
  }

  policy current_;
};

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

void send_all(int fd, const std::string& x) {
  ::send(fd, x.data(), x.size(), MSG_NOSIGNAL);
}

// Reads one response (headers + Content-Length body).
std::string read_response(int fd) {
  std::string raw;
  char buf[4096];
  for (;;) {
    auto head = raw.find("\r\n\r\n");
    if (head != std::string::npos) {
      auto cl = raw.find("Content-Length: ");
      size_t len = cl == std::string::npos || cl > head
                     ? 0
                     : std::stoul(raw.substr(cl + 16));
      if (raw.size() >= head + 4 + len)
        return raw.substr(0, head + 4 + len);
    }
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      return raw;
    raw.append(buf, static_cast<size_t>(n));
  }
}

struct egress_http : ::testing::Test {
  egress_http() : api(make_options(), store), server(api, state_mutex) {
    std::string error;
    EXPECT_TRUE(server.start("127.0.0.1", 0, &error)) << error;
    port = server.port();
  }

  static policy_api::options make_options() {
    policy_api::options opts;
    opts.token = "t";
    return opts;
  }

  std::mutex state_mutex;
  memory_store store;
  policy_api api;
  http_server server;
  uint16_t port = 0;
};

} // namespace

TEST_F(egress_http, keep_alive_and_headers) {
  int fd = connect_to(port);
  send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << res;
  EXPECT_NE(res.find("\r\n\r\nok"), std::string::npos) << res;
  send_all(fd, "GET /policy HTTP/1.1\r\nHost: x\r\n\r\n");
  res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << res;
  EXPECT_NE(res.find("X-Content-Type-Options: nosniff"), std::string::npos);
  EXPECT_NE(res.find("\r\n\r\nunauthorized\n"), std::string::npos);
  send_all(fd, "GET /policy HTTP/1.1\r\nHost: x\r\nopensandbox-egress-auth: "
               "t\r\n\r\n");
  res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << res;
  EXPECT_NE(res.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(res.find(R"("egress":[])"), std::string::npos) << res;
  send_all(fd, "DELETE /policy HTTP/1.1\r\nHost: x\r\nOPENSANDBOX-EGRESS-AUTH: "
               "t\r\nContent-Length: 0\r\n\r\n");
  res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << res;
  ::close(fd);
}

TEST_F(egress_http, expect_100_continue) {
  int fd = connect_to(port);
  std::string body = R"([{"action":"allow","target":"pypi.org"}])";
  send_all(fd, "PATCH /policy HTTP/1.1\r\nHost: x\r\nOPENSANDBOX-EGRESS-AUTH: "
               "t\r\nExpect: 100-continue\r\nContent-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n");
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1); // the interim answer, not a timeout
  char buf[64] = {};
  auto n = ::recv(fd, buf, 25, MSG_WAITALL);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
            "HTTP/1.1 100 Continue\r\n\r\n");
  send_all(fd, body);
  auto res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << res;
  ::close(fd);
  // The change went through the store (under the state lock).
  int fd2 = connect_to(port);
  send_all(fd2, "GET /policy HTTP/1.1\r\nHost: x\r\nOPENSANDBOX-EGRESS-AUTH: "
                "t\r\nConnection: close\r\n\r\n");
  res = read_response(fd2);
  EXPECT_NE(res.find("pypi.org"), std::string::npos) << res;
  ::close(fd2);
}

TEST_F(egress_http, body_limit) {
  int fd = connect_to(port);
  // Refused from the announced length, before any of the body is read.
  send_all(fd, "POST /policy HTTP/1.1\r\nHost: x\r\nOPENSANDBOX-EGRESS-AUTH: "
               "t\r\nContent-Length: 2097152\r\n\r\n");
  auto res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u)
    << res.substr(0, 200);
  ::close(fd);
}

namespace {

/// Reads until the peer closes (or 10 s pass); returns what arrived.
std::string read_to_close(int fd, bool* closed = nullptr) {
  std::string raw;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1)
      break;
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (closed != nullptr)
        *closed = true;
      break;
    }
    raw.append(buf, static_cast<size_t>(n));
  }
  return raw;
}

} // namespace

TEST_F(egress_http, DeepJsonIs400AndTheServerStaysUp) {
  int fd = connect_to(port);
  std::string body(1000000, '[');
  send_all(fd, "PATCH /policy HTTP/1.1\r\nHost: x\r\nOPENSANDBOX-EGRESS-AUTH: "
               "t\r\nContent-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n" + body);
  auto res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u)
    << res.substr(0, 200);
  EXPECT_NE(res.find("exceeded max depth of 128"), std::string::npos) << res;
  send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  res = read_response(fd);
  EXPECT_EQ(res.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << res;
  ::close(fd);
}

TEST_F(egress_http, AmbiguousFramingIs400AndCloses) {
  for (std::string framing :
       {"Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n"}) {
    int fd = connect_to(port);
    send_all(fd, "PATCH /policy HTTP/1.1\r\nHost: x\r\nOPENSANDBOX-EGRESS-AUTH: "
                 "t\r\n"
                   + framing
                   + "\r\n5\r\n[]   \r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n"
                     "Host: x\r\n\r\n");
    bool closed = false;
    auto res = read_to_close(fd, &closed);
    EXPECT_EQ(res.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u)
      << framing << res;
    // Nothing after the header was taken for a request.
    EXPECT_EQ(res.find("HTTP/1.1 200"), std::string::npos) << framing << res;
    EXPECT_TRUE(closed) << framing;
    ::close(fd);
  }
}

TEST_F(egress_http, SilentConnectionClosesAfterTheRequestTimeout) {
  int fd = connect_to(port);
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  auto res = read_to_close(fd, &closed);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_EQ(res, "");
  EXPECT_GE(waited, std::chrono::milliseconds(4500));
  EXPECT_LT(waited, std::chrono::milliseconds(8000));
  ::close(fd);
}
