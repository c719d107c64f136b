#include "http/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <utility>

using namespace osb;
using namespace osb::http;

namespace {

/// A blocking loopback client speaking just enough HTTP/1.1.
class raw_client {
public:
  explicit raw_client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_
      = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }

  ~raw_client() {
    ::close(fd_);
  }

  bool connected() const {
    return connected_;
  }

  void send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0)
        return;
      off += static_cast<size_t>(n);
    }
  }

  /// Reads one response (headers + Content-Length body); "" on EOF/timeout.
  std::string read_response() {
    for (;;) {
      auto end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        auto head = buf_.substr(0, end + 4);
        size_t len = 0;
        auto pos = lower(head).find("\r\ncontent-length: ");
        if (pos != std::string::npos)
          len = std::stoul(head.substr(pos + 18));
        if (buf_.size() >= end + 4 + len) {
          auto result = buf_.substr(0, end + 4 + len);
          buf_.erase(0, end + 4 + len);
          return result;
        }
      }
      if (!fill())
        return {};
    }
  }

  /// Reads until `needle` shows up; returns everything read so far.
  std::string read_until(const std::string& needle) {
    while (buf_.find(needle) == std::string::npos)
      if (!fill())
        break;
    return std::exchange(buf_, std::string{});
  }

  /// Returns whether the server closed the connection (EOF) in time.
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

private:
  static std::string lower(std::string x) {
    for (auto& c : x)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return x;
  }

  bool fill() {
    char tmp[4096];
    auto n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0)
      return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

/// Echoes method and path; `/empty` answers 204/202-style empty bodies and
/// `/async` answers from another thread after a short delay.
void test_handler(request&& req, responder done) {
  if (req.path == "/async") {
    std::thread([done = std::move(done)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      response res;
      res.body = R"({"async":true})";
      done(std::move(res));
    }).detach();
    return;
  }
  response res;
  if (req.path == "/empty") {
    res.status = 202;
    res.content_type.clear();
    return done(std::move(res));
  }
  if (req.path == "/nocontent") {
    res.status = 204;
    res.content_type.clear();
    return done(std::move(res));
  }
  res.body = req.method + " " + req.path + " q=" + req.query
             + " body=" + req.body + " h=" + req.header("x-test");
  res.content_type = "text/plain";
  res.headers.emplace_back("X-Request-ID", "rid");
  done(std::move(res));
}

class Server : public testing::Test {
protected:
  void start(server_options opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    auto srv = server::start(opts, test_handler);
    ASSERT_TRUE(srv.has_value()) << srv.error().message;
    srv_ = std::move(*srv);
    ASSERT_NE(srv_->port(), 0);
  }

  void TearDown() override {
    if (srv_)
      srv_->stop();
  }

  std::unique_ptr<server> srv_;
};

} // namespace

TEST_F(Server, KeepAliveTwoRequests) {
  start();
  raw_client c{srv_->port()};
  ASSERT_TRUE(c.connected());
  c.send("GET /a?x=1 HTTP/1.1\r\nHost: t\r\nX-Test: v\r\n\r\n");
  auto r1 = c.read_response();
  EXPECT_EQ(r1.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r1;
  EXPECT_NE(r1.find("Server: opensandbox\r\n"), std::string::npos);
  EXPECT_NE(r1.find("Content-Type: text/plain\r\n"), std::string::npos);
  EXPECT_NE(r1.find("X-Request-ID: rid\r\n"), std::string::npos);
  EXPECT_NE(r1.find("\r\n\r\nGET /a q=x=1 body= h=v"), std::string::npos);
  c.send("POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
  auto r2 = c.read_response();
  EXPECT_NE(r2.find("\r\n\r\nPOST /b q= body=abc h="), std::string::npos)
    << r2;
}

TEST_F(Server, PipelinedRequestsAnswerInOrder) {
  start();
  raw_client c{srv_->port()};
  c.send("GET /async HTTP/1.1\r\nHost: t\r\n\r\n"
         "GET /second HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r1 = c.read_response();
  auto r2 = c.read_response();
  EXPECT_NE(r1.find(R"({"async":true})"), std::string::npos) << r1;
  EXPECT_NE(r2.find("GET /second"), std::string::npos) << r2;
}

TEST_F(Server, ResponderFromAnotherThread) {
  start();
  raw_client c{srv_->port()};
  c.send("GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(r.find(R"({"async":true})"), std::string::npos);
}

TEST_F(Server, EmptyBodies) {
  start();
  raw_client c{srv_->port()};
  c.send("POST /empty HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.rfind("HTTP/1.1 202 Accepted\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_EQ(r.find("Content-Type"), std::string::npos);
  // 204 carries neither a body nor Content-Length; the connection stays usable.
  c.send("DELETE /nocontent HTTP/1.1\r\nHost: t\r\n\r\n");
  r = c.read_response();
  EXPECT_EQ(r.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << r;
  EXPECT_EQ(r.find("Content-Type"), std::string::npos);
  c.send("GET /again HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_NE(c.read_response().find("GET /again"), std::string::npos);
}

TEST_F(Server, ConnectionCloseHonored) {
  start();
  raw_client c{srv_->port()};
  c.send("GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto r = c.read_response();
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(Server, Http10WithoutKeepAliveCloses) {
  start();
  raw_client c{srv_->port()};
  c.send("GET /x HTTP/1.0\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(Server, HeadHasNoBody) {
  start();
  raw_client c{srv_->port()};
  // Pipelined: if the HEAD answer carried a body, it would show up between
  // the two status lines.
  c.send("HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n"
         "GET /y HTTP/1.1\r\nHost: t\r\n\r\n");
  auto data = c.read_until("GET /y");
  auto first_end = data.find("\r\n\r\n");
  ASSERT_NE(first_end, std::string::npos) << data;
  EXPECT_EQ(data.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << data;
  EXPECT_EQ(data.find("HTTP/1.1 200 OK\r\n", first_end + 4), first_end + 4)
    << data;
  EXPECT_NE(data.substr(0, first_end).find("Content-Length: "),
            std::string::npos);
}

TEST_F(Server, BodyOverLimitIs413) {
  server_options opts;
  opts.body_limit = 16;
  start(opts);
  raw_client c{srv_->port()};
  c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
}

TEST_F(Server, BodyOverLimitSentEagerlyStillGets413) {
  server_options opts;
  opts.body_limit = 1024;
  start(opts);
  raw_client c{srv_->port()};
  // The client sends the whole body before reading, like most SDK clients;
  // the server must drain it instead of resetting the connection.
  std::string body(4 * 1024 * 1024, 'x');
  c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + body);
  auto r = c.read_response();
  EXPECT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;
}

TEST_F(Server, MalformedRequestIs400) {
  start();
  raw_client c{srv_->port()};
  c.send("THIS IS NOT HTTP\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.rfind("HTTP/1.1 400 ", 0), 0u) << r;
}

// The connection limit (503, eviction): http_server_limits_test.cpp.

TEST_F(Server, ExpectContinue) {
  start();
  raw_client c{srv_->port()};
  c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
         "Expect: 100-continue\r\n\r\n");
  auto interim = c.read_response();
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("hi");
  EXPECT_NE(c.read_response().find("body=hi"), std::string::npos);
}

TEST_F(Server, StopWithPendingResponder) {
  responder kept;
  std::promise<void> arrived;
  std::atomic<bool> got{false};
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  auto srv = server::start(opts, [&](request&&, responder done) {
    kept = std::move(done);
    got = true;
    arrived.set_value();
  });
  ASSERT_TRUE(srv.has_value());
  raw_client c{(*srv)->port()};
  c.send("GET /hang HTTP/1.1\r\nHost: t\r\n\r\n");
  arrived.get_future().wait_for(std::chrono::seconds(5));
  ASSERT_TRUE(got);
  (*srv)->stop();
  // Answering after stop is a no-op, not a crash.
  kept(response{});
  kept = nullptr;
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(ServerStart, BindConflictFails) {
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  auto a = server::start(opts, test_handler);
  ASSERT_TRUE(a.has_value());
  opts.port = (*a)->port();
  auto b = server::start(opts, test_handler);
  EXPECT_FALSE(b.has_value());
}
