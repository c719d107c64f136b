// The synchronous HTTP server of execd and the egress sidecar
// (base/http_server.hpp) over real sockets on loopback, port 0: keep-alive
// and pipelining, streamed responses, body reading, Expect: 100-continue,
// framing checks, the header timeout and the server's own answers.

#include "base/http_server.hpp"

#include "base/strings.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <string>

using namespace osb;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
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

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0)
      return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

/// Reads more bytes into `buf`; false on EOF, error or timeout.
bool fill(int fd, std::string& buf) {
  char tmp[65536];
  auto n = ::recv(fd, tmp, sizeof(tmp), 0);
  if (n <= 0)
    return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

struct response {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;

  std::string header(const std::string& k) const {
    auto i = headers.find(k);
    return i == headers.end() ? "" : i->second;
  }
};

/// Reads one response from `fd`; bytes beyond it stay in `buf`.
response read_response(int fd, std::string& buf, bool head = false) {
  response r;
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!fill(fd, buf))
      return r;
  auto text = buf.substr(0, end + 2);
  buf.erase(0, end + 4);
  r.status = std::atoi(text.substr(9, 3).c_str());
  for (auto pos = text.find("\r\n") + 2; pos < text.size();) {
    auto eol = text.find("\r\n", pos);
    auto line = text.substr(pos, eol - pos);
    auto colon = line.find(':');
    r.headers[lower(line.substr(0, colon))]
      = std::string{trim(line.substr(colon + 1))};
    pos = eol + 2;
  }
  if (head || r.status == 100)
    return r;
  if (r.header("transfer-encoding") == "chunked") {
    for (;;) {
      size_t le;
      while ((le = buf.find("\r\n")) == std::string::npos)
        if (!fill(fd, buf))
          return r;
      auto size = std::stoul(buf.substr(0, le), nullptr, 16);
      while (buf.size() < le + 2 + size + 2)
        if (!fill(fd, buf))
          return r;
      r.body += buf.substr(le + 2, size);
      buf.erase(0, le + 2 + size + 2);
      if (size == 0)
        return r;
    }
  }
  auto len = std::stoul("0" + r.header("content-length"));
  while (buf.size() < len)
    if (!fill(fd, buf))
      return r;
  r.body = buf.substr(0, len);
  buf.erase(0, len);
  return r;
}

/// Reads until the peer closes or `timeout` passes.
std::string read_until_close(int fd, std::chrono::milliseconds timeout,
                             bool& closed) {
  std::string out;
  closed = false;
  auto deadline = clock_type::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - clock_type::now())
                  .count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1)
      return out;
    if (!fill(fd, out)) {
      closed = true;
      return out;
    }
  }
}

/// Reads the whole body; false if a read failed.
bool read_body(base::body_reader& body, std::string& out) {
  char buf[1000]; // small: several reads per body
  for (;;) {
    auto n = body.read(buf, sizeof(buf));
    if (n <= 0)
      return n == 0;
    out.append(buf, static_cast<size_t>(n));
  }
}

class SyncServer : public testing::Test {
protected:
  void start(base::sync_server_options opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    std::string err;
    srv = base::sync_server::start(
      std::move(opts),
      [this](const base::http_request& req, base::body_reader& body,
             base::response_writer& w) { handle(req, body, w); },
      &err);
    ASSERT_TRUE(srv) << err;
    port = srv->port();
  }

  void TearDown() override {
    if (srv)
      srv->stop();
  }

  /// The routes of the tests.
  void handle(const base::http_request& req, base::body_reader& body,
              base::response_writer& w) {
    if (req.path == "/echo") {
      std::string data;
      if (!read_body(body, data))
        return; // the server closes without an answer
      auto text = req.method + " " + req.target + " x-a=" + req.header("x-a")
                  + " body=" + data;
      w.send(200, "text/plain", text, {{"X-Done", body.done() ? "1" : "0"}});
    } else if (req.path == "/ignore-body") {
      w.send(200, "text/plain", "ignored");
    } else if (req.path == "/stream") {
      // One piece, then the next only when the test has seen the first.
      if (!w.begin(200, "text/event-stream", std::nullopt))
        return;
      w.write("first\n");
      first_seen.get_future().wait();
      w.write("second\n");
      w.finish();
    } else if (req.path == "/sized") {
      w.begin(200, "application/octet-stream", 6);
      w.write("abc");
      w.write("def");
      w.finish();
    } else if (req.path == "/close") {
      w.close_connection();
      w.send(200, "text/plain", "bye");
    } else if (req.path == "/throw") {
      throw std::runtime_error("boom");
    } else if (req.path == "/silent") {
      // no answer
    } else {
      w.send(404, "text/plain", "no route");
    }
  }

  std::unique_ptr<base::sync_server> srv;
  uint16_t port = 0;
  std::promise<void> first_seen;
};

} // namespace

TEST_F(SyncServer, KeepAliveAndPipelining) {
  start();
  int fd = connect_to(port);
  std::string buf;
  for (int i = 0; i < 3; ++i) {
    send_all(fd, "GET /echo?i=" + std::to_string(i)
                   + " HTTP/1.1\r\nHost: t\r\nX-A: v\r\n\r\n");
    auto r = read_response(fd, buf);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "GET /echo?i=" + std::to_string(i) + " x-a=v body=");
    EXPECT_EQ(r.header("connection"), "");
  }
  // Two requests in one segment, the second with a body.
  send_all(fd, "GET /echo?p=1 HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST /echo?p=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
               "\r\nhello");
  EXPECT_EQ(read_response(fd, buf).body, "GET /echo?p=1 x-a= body=");
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.body, "POST /echo?p=2 x-a= body=hello");
  EXPECT_EQ(r.header("x-done"), "1");
  // `Connection: close` is answered in kind, then the server closes.
  send_all(fd, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  r = read_response(fd, buf);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close");
  bool closed = false;
  EXPECT_EQ(read_until_close(fd, 5000ms, closed), "");
  EXPECT_TRUE(closed);
  ::close(fd);
}

TEST_F(SyncServer, ChunkedBodyIsDecodedAndAnUnreadBodySkipped) {
  start();
  int fd = connect_to(port);
  std::string buf;
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
               "chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  EXPECT_EQ(read_response(fd, buf).body, "POST /echo x-a= body=abcdefg");
  // The handler does not read this body; the connection still serves the
  // next request.
  std::string big(100000, 'x');
  send_all(fd, "POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: "
                 + std::to_string(big.size()) + "\r\n\r\n" + big);
  EXPECT_EQ(read_response(fd, buf).body, "ignored");
  send_all(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(read_response(fd, buf).status, 200);
  ::close(fd);
}

TEST_F(SyncServer, StreamedResponseGoesOutPieceByPiece) {
  start();
  int fd = connect_to(port);
  send_all(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string buf;
  while (buf.find("first\n") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf)) << buf;
  // The first piece arrived while the handler still waits to write the
  // second.
  EXPECT_EQ(buf.find("second"), std::string::npos);
  EXPECT_NE(lower(buf).find("transfer-encoding: chunked"), std::string::npos);
  EXPECT_NE(lower(buf).find("connection: keep-alive"), std::string::npos);
  first_seen.set_value();
  while (buf.find("0\r\n\r\n") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf)) << buf;
  EXPECT_NE(buf.find("second\n"), std::string::npos);
  // Still keep-alive; a streamed response with a length too.
  buf.clear();
  send_all(fd, "GET /sized HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.header("content-length"), "6");
  EXPECT_EQ(r.header("transfer-encoding"), "");
  EXPECT_EQ(r.body, "abcdef");
  ::close(fd);
}

TEST_F(SyncServer, HeadSendsTheHeaderOnly) {
  start();
  int fd = connect_to(port);
  std::string buf;
  send_all(fd, "HEAD /sized HTTP/1.1\r\nHost: t\r\n\r\n"
               "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /ignore-body HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = read_response(fd, buf, true);
  EXPECT_EQ(r.header("content-length"), "6");
  r = read_response(fd, buf, true);
  EXPECT_EQ(r.header("content-length"), "21"); // "HEAD /echo x-a= body="
  // No body bytes came between: the next response follows at once.
  r = read_response(fd, buf);
  EXPECT_EQ(r.body, "ignored");
  ::close(fd);
}

TEST_F(SyncServer, ExpectContinueIsSentWhenTheBodyIsRead) {
  start();
  int fd = connect_to(port);
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
               "Content-Length: 4\r\n\r\n");
  std::string buf;
  auto interim = read_response(fd, buf);
  EXPECT_EQ(interim.status, 100);
  send_all(fd, "data");
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /echo x-a= body=data");
  // A handler that answers without reading: no interim response, and the
  // connection closes (the client sends no body, nor may a late 100
  // follow the answer).
  send_all(fd, "POST /ignore-body HTTP/1.1\r\nHost: t\r\nExpect: "
               "100-continue\r\nContent-Length: 4\r\n\r\n");
  r = read_response(fd, buf);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close");
  bool closed = false;
  EXPECT_EQ(buf + read_until_close(fd, 5000ms, closed), "");
  EXPECT_TRUE(closed);
  ::close(fd);
}

TEST_F(SyncServer, CloseConnectionClosesAfterTheResponse) {
  start();
  int fd = connect_to(port);
  send_all(fd, "GET /close HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\n"
               "Host: t\r\n\r\n");
  bool closed = false;
  auto raw = read_until_close(fd, 5000ms, closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
  EXPECT_NE(lower(raw).find("connection: close"), std::string::npos) << raw;
  // The pipelined request got no answer.
  EXPECT_EQ(raw.find("HTTP/1.1", 1), std::string::npos) << raw;
  ::close(fd);
}

TEST_F(SyncServer, AmbiguousFramingIsRejectedAndCloses) {
  start();
  for (std::string fields :
       {"Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 30\r\n",
        "Content-Length: 30\r\nContent-Length: 31\r\n"}) {
    int fd = connect_to(port);
    send_all(fd, "POST /echo HTTP/1.1\r\nHost: t\r\n" + fields
                   + "\r\n5\r\nhello\r\n0\r\n\r\nGET /echo HTTP/1.1\r\n"
                     "Host: t\r\n\r\n");
    bool closed = false;
    auto raw = read_until_close(fd, 5000ms, closed);
    EXPECT_EQ(raw.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << raw;
    EXPECT_TRUE(raw.size() > 11 && raw.substr(raw.size() - 11) == "Bad Request")
      << raw;
    // The smuggled request got no answer.
    EXPECT_EQ(raw.find("HTTP/1.1 200"), std::string::npos) << fields << raw;
    EXPECT_TRUE(closed) << fields;
    ::close(fd);
  }
  int fd = connect_to(port);
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, "
               "chunked\r\n\r\n0\r\n\r\n");
  bool closed = false;
  auto raw = read_until_close(fd, 5000ms, closed);
  EXPECT_EQ(raw.rfind("HTTP/1.1 501", 0), 0u) << raw;
  EXPECT_TRUE(closed);
  ::close(fd);
}

TEST_F(SyncServer, OwnAnswersGoThroughTheErrorResponder) {
  std::mutex mtx;
  std::vector<std::pair<int, std::string>> seen;
  base::sync_server_options opts;
  opts.error_response = [&](base::response_writer& w, int status,
                            std::string_view reason) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      seen.emplace_back(status, std::string{reason});
    }
    w.send(status, "text/plain", "mine: " + std::string{reason});
  };
  start(std::move(opts));
  std::string buf;
  int fd = connect_to(port);
  send_all(fd, "GET /throw HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /silent HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "mine: internal error");
  r = read_response(fd, buf);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "mine: no response");
  // Both kept the connection; a malformed request then closes it.
  send_all(fd, "GET /echo HTTP/1.1\r\nHost t\r\n\r\n");
  bool closed = false;
  auto raw = read_until_close(fd, 5000ms, closed);
  EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;
  EXPECT_NE(raw.find("mine: "), std::string::npos) << raw;
  EXPECT_TRUE(closed);
  ::close(fd);
  fd = connect_to(port);
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, "
               "chunked\r\n\r\n0\r\n\r\n");
  raw = read_until_close(fd, 5000ms, closed);
  EXPECT_EQ(raw.rfind("HTTP/1.1 501", 0), 0u) << raw;
  EXPECT_NE(raw.find("mine: unsupported transfer coding"), std::string::npos)
    << raw;
  ::close(fd);
  std::lock_guard<std::mutex> guard{mtx};
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], (std::pair<int, std::string>{500, "internal error"}));
  EXPECT_EQ(seen[1], (std::pair<int, std::string>{500, "no response"}));
  EXPECT_EQ(seen[2], (std::pair<int, std::string>{400, ""}));
  EXPECT_EQ(seen[3],
            (std::pair<int, std::string>{501, "unsupported transfer coding"}));
}

TEST_F(SyncServer, SilentConnectionClosesAfterTheHeaderTimeout) {
  base::sync_server_options opts;
  opts.header_timeout = 1s;
  start(std::move(opts));
  int fd = connect_to(port);
  auto t0 = clock_type::now();
  bool closed = false;
  auto raw = read_until_close(fd, 5000ms, closed);
  auto waited = clock_type::now() - t0;
  EXPECT_TRUE(closed);
  EXPECT_EQ(raw, "");
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 2500ms);
  ::close(fd);
}

TEST_F(SyncServer, TricklingHeaderIsCutAtTheHeaderTimeout) {
  base::sync_server_options opts;
  opts.header_timeout = 1s;
  start(std::move(opts));
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

TEST_F(SyncServer, IdleKeepAliveConnectionClosesAfterTheIdleTimeout) {
  base::sync_server_options opts;
  opts.idle_timeout = 1s;
  opts.header_timeout = 5s;
  start(std::move(opts));
  int fd = connect_to(port);
  std::string buf;
  send_all(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_EQ(read_response(fd, buf).status, 200);
  auto t0 = clock_type::now();
  bool closed = false;
  EXPECT_EQ(read_until_close(fd, 5000ms, closed), "");
  EXPECT_TRUE(closed);
  EXPECT_GE(clock_type::now() - t0, 900ms);
  EXPECT_LT(clock_type::now() - t0, 2500ms);
  ::close(fd);
}

TEST_F(SyncServer, DeadlineCoversTheBodyWhenAsked) {
  base::sync_server_options opts;
  opts.header_timeout = 1s;
  opts.deadline_covers_body = true;
  start(std::move(opts));
  int fd = connect_to(port);
  auto t0 = clock_type::now();
  // The body never comes: the handler's read fails, and with no answer
  // the connection just closes.
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"
               "abc");
  bool closed = false;
  EXPECT_EQ(read_until_close(fd, 5000ms, closed), "");
  EXPECT_TRUE(closed);
  EXPECT_GE(clock_type::now() - t0, 900ms);
  EXPECT_LT(clock_type::now() - t0, 2500ms);
  ::close(fd);
}

TEST_F(SyncServer, ConnectionsBeyondTheLimitAreClosed) {
  base::sync_server_options opts;
  opts.max_connections = 1;
  start(std::move(opts));
  int first = connect_to(port);
  std::string buf;
  send_all(first, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_EQ(read_response(first, buf).status, 200); // it is being served
  int second = connect_to(port);
  bool closed = false;
  EXPECT_EQ(read_until_close(second, 5000ms, closed), "");
  EXPECT_TRUE(closed);
  ::close(second);
  // The first one is still served.
  send_all(first, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(read_response(first, buf).status, 200);
  ::close(first);
}

TEST_F(SyncServer, StopClosesOpenConnections) {
  start();
  int fd = connect_to(port);
  std::string buf;
  send_all(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_EQ(read_response(fd, buf).status, 200);
  srv->stop();
  bool closed = false;
  EXPECT_EQ(read_until_close(fd, 5000ms, closed), "");
  EXPECT_TRUE(closed);
  ::close(fd);
  EXPECT_LT(connect_to(port), 0);
}
