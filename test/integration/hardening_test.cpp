// The real server binary (and the execd it injects) against hostile input:
// deep JSON, a 32-bit port wrap, ambiguous request framing, silent
// connections and thousands of idle sockets.

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/resource.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::server_process;

namespace {

using clock_type = std::chrono::steady_clock;

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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

std::string nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

/// One server and one running sandbox for the whole suite.
class Hardening : public testing::Test {
protected:
  static void SetUpTestSuite() {
    srv_ = new server_process;
    if (!srv_->start())
      return;
    auto r = srv_->call(
      "POST", "/v1/sandboxes",
      R"({"image":{"uri":"opensandbox/busybox:latest"},)"
      R"("entrypoint":["sleep","3600"],"timeout":600,)"
      R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})");
    if (r.status != 202)
      return;
    id_ = r.json()["id"].GetString();
    srv_->wait_state(id_, "Running");
  }

  static void TearDownTestSuite() {
    if (!id_.empty())
      srv_->call("DELETE", "/v1/sandboxes/" + id_);
    delete srv_; // kills the server, removes this node's containers
    srv_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(srv_, nullptr);
    ASSERT_FALSE(id_.empty()) << srv_->read_log();
  }

  static bool server_alive() {
    return srv_->call("GET", "/v1/sandboxes/" + id_).status == 200;
  }

  static std::string execd(const std::string& rest) {
    return "/sandboxes/" + id_ + "/proxy/44772" + rest;
  }

  static server_process* srv_;
  static std::string id_;
};

server_process* Hardening::srv_ = nullptr;
std::string Hardening::id_;

} // namespace

TEST_F(Hardening, DeepJsonIs400OnCreatePatchAndRenew) {
  // 100,000 levels crashed the server (a segfault without a log line).
  auto deep = nested(100000);
  auto in_member = R"({"expiresAt":)" + nested(100000) + "}";
  for (auto& body : {deep, in_member}) {
    auto c = srv_->call("POST", "/v1/sandboxes", body);
    EXPECT_EQ(c.status, 400) << c.body;
    EXPECT_NE(c.body.find("There was an error parsing the body"),
              std::string::npos)
      << c.body;
    auto p = srv_->call("PATCH", "/v1/sandboxes/" + id_ + "/metadata", body);
    EXPECT_EQ(p.status, 400) << p.body;
    auto r = srv_->call("POST", "/v1/sandboxes/" + id_ + "/renew-expiration",
                        body);
    EXPECT_EQ(r.status, 400) << r.body;
  }
  EXPECT_TRUE(server_alive()) << srv_->read_log();
}

TEST_F(Hardening, NumbersThatCrashedRapidJsonAreAnsweredAndTheServerStaysUp) {
  // Found by fuzz_codec: RapidJSON 1.1's full-precision conversion of
  // `0.` + 400 zeros + digits read out of bounds (a segfault).
  auto tiny = "0." + std::string(400, '0') + "25563";
  auto p = srv_->call("PATCH", "/v1/sandboxes/" + id_ + "/metadata",
                      R"({"a":)" + tiny + "}");
  EXPECT_EQ(p.status, 422) << p.body;
  auto r = srv_->call("POST", "/v1/sandboxes/" + id_ + "/renew-expiration",
                      R"({"expiresAt":)" + tiny + "}");
  EXPECT_EQ(r.status, 400) << r.body; // 1970 is in the past
  auto c = srv_->call("POST", "/v1/sandboxes",
                      R"({"image":{"uri":"x"},"entrypoint":["sh"],)"
                      R"("resourceLimits":{},"timeout":)"
                        + tiny + "}");
  EXPECT_EQ(c.status, 422) << c.body;
  EXPECT_TRUE(server_alive()) << srv_->read_log();
}

TEST_F(Hardening, DeepJsonThroughTheProxyIs400AndExecdStaysUp) {
  // 1,000,000 levels killed execd, after which every call got a 502.
  auto r = srv_->call("POST", execd("/command"), nested(1000000));
  EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
  EXPECT_NE(r.body.find("nests deeper than 128 levels"), std::string::npos)
    << r.body.substr(0, 300);
  auto ping = srv_->call("GET", execd("/ping"));
  EXPECT_EQ(ping.status, 200) << ping.body;
  auto run = srv_->call("POST", execd("/command"),
                        R"({"command":"echo still-here"})");
  EXPECT_EQ(run.status, 200);
  EXPECT_NE(run.body.find("still-here"), std::string::npos) << run.body;
}

TEST_F(Hardening, ProxyPortBeyond16BitsIs400) {
  // 4294975376 = 2^32 + 8080 reached the sandbox's port 8080.
  for (auto port : {"4294975376", "65536", "0"}) {
    auto r = srv_->call("GET", "/sandboxes/" + id_ + "/proxy/" + port + "/");
    EXPECT_EQ(r.status, 400) << port << " " << r.body;
    EXPECT_NE(r.body.find("Port must be between 1 and 65535."),
              std::string::npos)
      << port << " " << r.body;
  }
  auto e = srv_->call("GET", "/v1/sandboxes/" + id_ + "/endpoints/4294975376");
  EXPECT_EQ(e.status, 400) << e.body;
}

TEST_F(Hardening, AmbiguousFramingIs400AndCloses) {
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
    // To the API and to the proxy (a streamed path) alike.
    for (std::string target :
         {std::string{"/v1/sandboxes/"} + id_ + "/metadata", execd("/ping")}) {
      int fd = connect_to(srv_->port());
      ASSERT_GE(fd, 0);
      send_all(fd, "PATCH " + target
                     + " HTTP/1.1\r\nHost: t\r\nOPEN-SANDBOX-API-KEY: "
                       "test-key\r\n"
                     + x.fields
                     + "\r\n5\r\n{\"a\":\r\n0\r\n\r\nGET /health HTTP/1.1\r\n"
                       "Host: t\r\n\r\n");
      bool closed = false;
      auto r = read_until_close(fd, 5000ms, closed);
      ::close(fd);
      EXPECT_EQ(r.rfind("HTTP/1.1 " + std::to_string(x.status) + " ", 0), 0u)
        << target << " " << x.fields << r;
      // The smuggled /health got no answer of its own.
      EXPECT_EQ(r.find("\"healthy\""), std::string::npos) << x.fields << r;
      EXPECT_TRUE(closed) << target << " " << x.fields;
    }
  }
  EXPECT_TRUE(server_alive());
}

TEST_F(Hardening, SilentConnectionClosesAfterTheHeaderTimeout) {
  // server.timeout_header defaults to 5 s.
  int fd = connect_to(srv_->port());
  ASSERT_GE(fd, 0);
  auto t0 = clock_type::now();
  bool closed = false;
  auto r = read_until_close(fd, 15000ms, closed);
  auto waited = clock_type::now() - t0;
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(r, "");
  EXPECT_GE(waited, 4500ms);
  EXPECT_LT(waited, 7000ms);
}

TEST_F(Hardening, ThreeThousandIdleSocketsDoNotLockClientsOut) {
  // About 1,100 idle sockets made every other client wait ~30 s for a 503.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::max<rlim_t>(rl.rlim_cur, std::min<rlim_t>(rl.rlim_max,
                                                               8192));
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ASSERT_GE(rl.rlim_cur, 3100u) << "raise the hard RLIMIT_NOFILE";
  std::vector<int> idle;
  for (int i = 0; i < 3000; ++i) {
    auto fd = connect_to(srv_->port());
    ASSERT_GE(fd, 0) << "connect " << i;
    idle.push_back(fd);
  }
  auto t0 = clock_type::now();
  auto r = srv_->call("GET", "/v1/sandboxes/" + id_);
  auto took = std::chrono::duration_cast<std::chrono::microseconds>(
    clock_type::now() - t0);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_LT(took, 1s);
  std::printf("[ measured ] authenticated GET with 3000 idle sockets open: "
              "%.1f ms\n",
              static_cast<double>(took.count()) / 1000.0);
  // The oldest idle sockets made room; the newest still hold their slot.
  bool closed = false;
  read_until_close(idle.front(), 2000ms, closed);
  EXPECT_TRUE(closed);
  read_until_close(idle.back(), 100ms, closed);
  EXPECT_FALSE(closed);
  for (auto fd : idle)
    ::close(fd);
  EXPECT_TRUE(server_alive());
}
