#include "base/strings.hpp"
#include "execd/routes.hpp"
#include "execd/server.hpp"
#include "execd/util.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

using namespace osb::execd;

namespace {

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

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

/// Reads more bytes into `buf`; false on EOF/timeout.
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
  bool chunked = false;

  std::string header(const std::string& k) const {
    auto i = headers.find(k);
    return i == headers.end() ? "" : i->second;
  }
  bool has(const std::string& k) const {
    return headers.count(k) > 0;
  }
};

/// Reads one response from `fd` (bytes beyond it stay in `buf`).
response read_response(int fd, std::string& buf, bool head = false) {
  response r;
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!fill(fd, buf))
      return r;
  auto head_text = buf.substr(0, end);
  buf.erase(0, end + 4);
  auto eol = head_text.find("\r\n");
  auto status_line = head_text.substr(0, eol);
  r.status = std::atoi(status_line.substr(9, 3).c_str());
  size_t pos = eol == std::string::npos ? head_text.size() : eol + 2;
  while (pos < head_text.size()) {
    auto next = head_text.find("\r\n", pos);
    auto line = head_text.substr(pos, next == std::string::npos
                                        ? std::string::npos
                                        : next - pos);
    auto colon = line.find(':');
    auto value = line.substr(colon + 1);
    while (!value.empty() && value[0] == ' ')
      value.erase(0, 1);
    r.headers[osb::lower(line.substr(0, colon))] = value;
    if (next == std::string::npos)
      break;
    pos = next + 2;
  }
  if (head || r.status == 101 || r.status == 204 || r.status == 304)
    return r;
  if (osb::lower(r.header("transfer-encoding")) == "chunked") {
    r.chunked = true;
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
        break;
    }
  } else if (r.has("content-length")) {
    auto len = std::stoul(r.header("content-length"));
    while (buf.size() < len)
      if (!fill(fd, buf))
        return r;
    r.body = buf.substr(0, len);
    buf.erase(0, len);
  } else {
    while (fill(fd, buf)) {
    }
    r.body = std::move(buf);
    buf.clear();
  }
  return r;
}

/// One request on a fresh connection.
response request(uint16_t port, const std::string& method,
                 const std::string& target, const std::string& body = "",
                 const std::string& extra_headers = "") {
  int fd = connect_to(port);
  EXPECT_GE(fd, 0);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: test\r\n"
                    + extra_headers;
  if (!body.empty() || method == "POST")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  send_all(fd, req);
  std::string buf;
  auto r = read_response(fd, buf, method == "HEAD");
  ::close(fd);
  return r;
}

std::vector<rapidjson::Document> events(const std::string& body) {
  std::vector<rapidjson::Document> out;
  size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\n\n", pos);
    if (end == std::string::npos)
      break;
    out.emplace_back();
    out.back().Parse(body.substr(pos, end - pos).c_str());
    EXPECT_FALSE(out.back().HasParseError()) << body.substr(pos, end - pos);
    pos = end + 2;
  }
  return out;
}

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

class ExecdHttp : public ::testing::Test {
protected:
  void SetUp() override {
    dir = "/tmp/execd-http-test-" + random_hex(4);
    make_dirs(dir);
    start_server("");
  }

  void start_server(const std::string& token) {
    if (srv)
      srv->stop();
    server_options so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.access_token = token;
    std::string err;
    srv = http_server::start(so, router{commands, sessions, metrics}, &err);
    ASSERT_TRUE(srv) << err;
    port = srv->port();
  }

  void TearDown() override {
    srv->stop();
    std::filesystem::remove_all(dir);
  }

  std::string dir;
  command_manager commands{"/tmp/execd-http-test-logs"};
  session_manager sessions{"/tmp/execd-http-test-sessions"};
  metrics_sampler metrics;
  std::unique_ptr<http_server> srv;
  uint16_t port = 0;
};

std::string multipart_body(const std::string& boundary,
                           const std::vector<std::pair<std::string,
                                                       std::string>>& files) {
  std::string body;
  for (auto& [meta, content] : files) {
    body += "--" + boundary + "\r\n"
            "Content-Disposition: form-data; name=\"metadata\"; "
            "filename=\"metadata\"\r\nContent-Type: application/json\r\n\r\n"
            + meta + "\r\n";
    body += "--" + boundary + "\r\n"
            "Content-Disposition: form-data; name=\"file\"; "
            "filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            + content + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  return body;
}

} // namespace

TEST_F(ExecdHttp, PingIsEmptyWithContentLength) {
  auto r = request(port, "GET", "/ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  EXPECT_EQ(r.body, "");
}

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

TEST_F(ExecdHttp, KeepAliveServesSeveralRequests) {
  int fd = connect_to(port);
  std::string buf;
  for (int i = 0; i < 3; ++i) {
    send_all(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = read_response(fd, buf);
    EXPECT_EQ(r.status, 200);
  }
  // Pipelined.
  send_all(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics "
               "HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_response(fd, buf).status, 200);
  auto m = read_response(fd, buf);
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("\"cpu_count\""), std::string::npos);
  ::close(fd);
}

TEST_F(ExecdHttp, CommandStream) {
  auto r = request(port, "POST", "/command",
                   R"({"command":"echo hi; echo there >&2"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  EXPECT_TRUE(r.chunked);
  auto evs = events(r.body);
  ASSERT_GE(evs.size(), 4u);
  EXPECT_STREQ(evs.front()["type"].GetString(), "init");
  std::vector<std::string> types;
  for (auto& e : evs) {
    types.emplace_back(e["type"].GetString());
    EXPECT_TRUE(e["timestamp"].IsInt64());
  }
  EXPECT_EQ(types.back(), "execution_complete");
  EXPECT_NE(r.body.find(R"({"type":"stdout","text":"hi","timestamp":)"),
            std::string::npos);
  EXPECT_NE(r.body.find(R"({"type":"stderr","text":"there","timestamp":)"),
            std::string::npos);
  // Status of the finished command.
  auto id = std::string{evs.front()["text"].GetString()};
  auto s = request(port, "GET", "/command/status/" + id);
  EXPECT_EQ(s.status, 200);
  rapidjson::Document doc;
  doc.Parse(s.body.c_str());
  EXPECT_EQ(doc["id"].GetString(), id);
  EXPECT_FALSE(doc["running"].GetBool());
  EXPECT_EQ(doc["exit_code"].GetInt(), 0);
  EXPECT_TRUE(doc["started_at"].IsString());
  EXPECT_TRUE(doc["finished_at"].IsString());
}

TEST_F(ExecdHttp, CommandValidationErrorsAreJson) {
  auto check = [&](const std::string& body, int status) {
    auto r = request(port, "POST", "/command", body);
    EXPECT_EQ(r.status, status) << body;
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    ASSERT_FALSE(doc.HasParseError()) << r.body;
    EXPECT_STREQ(doc["code"].GetString(), "INVALID_REQUEST_BODY");
    EXPECT_TRUE(doc["message"].IsString());
  };
  check("{not json", 400);
  check(R"({"cwd":"/"})", 400);
  check(R"({"command":""})", 400);
  check(R"({"command":"true","cwd":"/definitely/missing"})", 400);
  check(R"({"command":"true","gid":1})", 400);
  check(R"({"command":"true","timeout":-5})", 400);
  auto r = request(port, "GET", "/command/status/unknown");
  EXPECT_EQ(r.status, 404);
  r = request(port, "DELETE", "/command");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("MISSING_QUERY"), std::string::npos);
  r = request(port, "DELETE", "/command?id=unknown");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("RUNTIME_ERROR"), std::string::npos);
  r = request(port, "GET", "/no/such/route");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("\"code\""), std::string::npos);
}

TEST_F(ExecdHttp, BackgroundCommandLogsWithCursor) {
  auto r = request(port, "POST", "/command",
                   R"({"command":"echo log-line-1; sleep 0.2; echo log-line-2","background":true})");
  auto evs = events(r.body);
  ASSERT_EQ(evs.size(), 2u);
  std::string id = evs[0]["text"].GetString();
  EXPECT_STREQ(evs[1]["type"].GetString(), "execution_complete");
  std::string all;
  std::string cursor;
  for (int i = 0; i < 50 && all.find("log-line-2") == std::string::npos; ++i) {
    auto l = request(port, "GET", "/command/" + id + "/logs"
                                    + (cursor.empty() ? "" : "?cursor=" + cursor));
    EXPECT_EQ(l.status, 200);
    ASSERT_TRUE(l.has("execd-commands-tail-cursor"));
    cursor = l.header("execd-commands-tail-cursor");
    all += l.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(all, "log-line-1\nlog-line-2\n");
  EXPECT_EQ(cursor, std::to_string(all.size()));
  auto again = request(port, "GET", "/command/" + id + "/logs?cursor=" + cursor);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.header("content-length"), "0");
  EXPECT_EQ(request(port, "GET", "/command/nope/logs").status, 400);
}

TEST_F(ExecdHttp, InterruptOverHttp) {
  // Read the stream by hand to learn the id from the init event.
  int fd = connect_to(port);
  std::string body = R"({"command":"sleep 30"})";
  send_all(fd, "POST /command HTTP/1.1\r\nHost: x\r\nContent-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string buf;
  while (buf.find("\"init\"") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  auto at = buf.find("\"text\":\"") + 8;
  auto id = buf.substr(at, 32);
  auto start = std::chrono::steady_clock::now();
  auto r = request(port, "DELETE", "/command?id=" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  while (buf.find("\r\n0\r\n\r\n") == std::string::npos && fill(fd, buf)) {
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(buf.find("\"evalue\":\"-1\""), std::string::npos) << buf;
  EXPECT_NE(buf.find("signal: terminated"), std::string::npos) << buf;
  ::close(fd);
  auto s = request(port, "GET", "/command/status/" + id);
  EXPECT_NE(s.body.find("\"running\":false"), std::string::npos) << s.body;
}

TEST_F(ExecdHttp, UploadThenDownloadWithRange) {
  auto a = dir + "/up/a.txt";
  auto b = dir + "/up/nested/b.bin";
  auto body = multipart_body(
    "opensandbox_abc_123",
    {{R"({"path":")" + a + R"(","mode":644,"owner":null,"group":null})",
      "0123456789abcdefghij"},
     {R"({"path":")" + b + R"("})", std::string("\0\1\2\r\n--x", 8)}});
  auto r = request(port, "POST", "/files/upload", body,
                   "Content-Type: multipart/form-data; "
                   "boundary=opensandbox_abc_123\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-length"), "0");
  std::string got;
  ASSERT_TRUE(read_file(b, got));
  EXPECT_EQ(got, std::string("\0\1\2\r\n--x", 8));
  auto full = request(port, "GET", "/files/download?path=" + a);
  EXPECT_EQ(full.status, 200);
  EXPECT_EQ(full.body, "0123456789abcdefghij");
  EXPECT_EQ(full.header("content-length"), "20");
  EXPECT_EQ(full.header("content-type"), "application/octet-stream");
  EXPECT_EQ(full.header("content-disposition"),
            "attachment; filename=\"a.txt\"");
  auto part = request(port, "GET", "/files/download?path=" + a, "",
                      "Range: bytes=0-9\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "0123456789");
  EXPECT_EQ(part.header("content-range"), "bytes 0-9/20");
  EXPECT_EQ(part.header("content-length"), "10");
  auto tail = request(port, "GET", "/files/download?path=" + a, "",
                      "Range: bytes=-5\r\n");
  EXPECT_EQ(tail.body, "fghij");
  auto bad = request(port, "GET", "/files/download?path=" + a, "",
                     "Range: bytes=50-60\r\n");
  EXPECT_EQ(bad.status, 416);
  EXPECT_NE(bad.body.find("\"code\""), std::string::npos);
  auto missing = request(port, "GET", "/files/download?path=" + dir + "/none");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("FILE_NOT_FOUND"), std::string::npos);
  auto info = request(port, "GET", "/files/info?path=" + a);
  EXPECT_NE(info.body.find("\"mode\":644"), std::string::npos) << info.body;
}

TEST_F(ExecdHttp, UploadPairingErrors) {
  auto ct = std::string{"Content-Type: multipart/form-data; boundary=B\r\n"};
  auto only_meta = "--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
                   "\r\n{\"path\":\"" + dir + "/m\"}\r\n--B--\r\n";
  auto r = request(port, "POST", "/files/upload", only_meta, ct);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("INVALID_FILE_CONTENT"), std::string::npos) << r.body;
  auto only_file = "--B\r\nContent-Disposition: form-data; name=\"file\"; "
                   "filename=\"f\"\r\n\r\ndata\r\n--B--\r\n";
  r = request(port, "POST", "/files/upload", only_file, ct);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("INVALID_FILE_METADATA"), std::string::npos);
  // File before its metadata is spooled and placed.
  auto reversed = std::string{"--B\r\nContent-Disposition: form-data; "
                              "name=\"file\"; filename=\"f\"\r\n\r\nlate\r\n"}
                  + "--B\r\nContent-Disposition: form-data; "
                    "name=\"metadata\"\r\n\r\n{\"path\":\""
                  + dir + "/late.txt\"}\r\n--B--\r\n";
  r = request(port, "POST", "/files/upload", reversed, ct);
  EXPECT_EQ(r.status, 200) << r.body;
  std::string got;
  EXPECT_TRUE(read_file(dir + "/late.txt", got));
  EXPECT_EQ(got, "late");
}

TEST_F(ExecdHttp, ChunkedUploadBody) {
  int fd = connect_to(port);
  auto body = multipart_body("zz", {{R"({"path":")" + dir + R"(/c.txt"})",
                                     "chunked-content"}});
  std::string req = "POST /files/upload HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: multipart/form-data; boundary=zz\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
  for (size_t i = 0; i < body.size(); i += 17) {
    auto piece = body.substr(i, 17);
    char size[16];
    std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
    req += size + piece + "\r\n";
  }
  req += "0\r\n\r\n";
  send_all(fd, req);
  std::string buf;
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.status, 200) << r.body;
  ::close(fd);
  std::string got;
  EXPECT_TRUE(read_file(dir + "/c.txt", got));
  EXPECT_EQ(got, "chunked-content");
}

TEST_F(ExecdHttp, FileEndpointsEmptySuccesses) {
  auto r = request(port, "POST", "/directories",
                   R"({")" + dir + R"(/d1/d2":{"mode":755}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/d1/d2"));
  std::ofstream{dir + "/d1/f.txt"} << "hello hello";
  r = request(port, "POST", "/files/replace?verbose=true",
              R"({")" + dir + R"(/d1/f.txt":{"old":"hello","new":"bye"}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({")" + dir + R"(/d1/f.txt":{"replacedCount":2}})");
  r = request(port, "POST", "/files/replace",
              R"({")" + dir + R"(/d1/f.txt":{"old":"bye","new":"x"}})");
  EXPECT_EQ(r.header("content-length"), "0");
  r = request(port, "POST", "/files/permissions",
              R"({")" + dir + R"(/d1/f.txt":{"mode":600}})");
  EXPECT_EQ(r.status, 200);
  r = request(port, "GET", "/files/search?path=" + dir + "&pattern=*.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"mode\":600"), std::string::npos) << r.body;
  r = request(port, "POST", "/files/mv",
              R"([{"src":")" + dir + R"(/d1/f.txt","dest":")" + dir
                + R"(/moved/f.txt"}])");
  EXPECT_EQ(r.status, 200);
  r = request(port, "GET", "/directories/list?path=" + dir + "&depth=2");
  EXPECT_NE(r.body.find("/moved/f.txt"), std::string::npos) << r.body;
  r = request(port, "DELETE", "/files?path=" + dir + "/moved/f.txt&path="
                                + dir + "/never-existed");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  r = request(port, "DELETE", "/directories?path=" + dir + "/d1");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(std::filesystem::exists(dir + "/d1"));
  r = request(port, "GET", "/files/info?path=" + dir + "/gone");
  EXPECT_EQ(r.status, 404);
}

TEST_F(ExecdHttp, SessionsOverHttp) {
  auto r = request(port, "POST", "/session", "");
  EXPECT_EQ(r.status, 200);
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  std::string id = doc["session_id"].GetString();
  r = request(port, "POST", "/session/" + id + "/run",
              R"({"command":"export A=1; cd )" + dir + R"("})");
  EXPECT_EQ(r.status, 200);
  r = request(port, "POST", "/session/" + id + "/run",
              R"({"command":"echo $A; pwd; exit 3"})");
  auto evs = events(r.body);
  EXPECT_STREQ(evs[0]["text"].GetString(), id.c_str());
  EXPECT_NE(r.body.find(R"("text":"1")"), std::string::npos);
  EXPECT_NE(r.body.find(R"("text":")" + dir + "\""), std::string::npos);
  EXPECT_NE(r.body.find(R"("evalue":"3")"), std::string::npos);
  EXPECT_EQ(request(port, "POST", "/session/nope/run", R"({"command":"x"})")
              .status,
            500);
  r = request(port, "DELETE", "/session/" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  EXPECT_EQ(request(port, "DELETE", "/session/" + id).status, 404);
}

TEST_F(ExecdHttp, CodeWithoutLanguageRunsShell) {
  auto r = request(port, "POST", "/code", R"({"code":"echo from-code"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("text":"from-code")"), std::string::npos);
  r = request(port, "POST", "/code",
              R"({"code":"1+1","context":{"language":"python"}})");
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.body.find("NOT_SUPPORTED"), std::string::npos);
  r = request(port, "GET", "/code/contexts");
  EXPECT_EQ(r.body, "[]");
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

TEST_F(ExecdHttp, AccessToken) {
  start_server("s3cret");
  // The health ping stays open; everything else needs the token.
  auto r = request(port, "GET", "/ping");
  EXPECT_EQ(r.status, 200);
  r = request(port, "POST", "/command", R"({"command":"echo hi"})");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"Unauthorized: invalid or missing header X-EXECD-ACCESS-TOKEN"})");
  r = request(port, "GET", "/proxy/1/x");
  EXPECT_EQ(r.status, 401);
  r = request(port, "GET", "/files/info?path=%2F", "",
              "X-EXECD-ACCESS-TOKEN: wrong\r\n");
  EXPECT_EQ(r.status, 401);
  r = request(port, "GET", "/files/info?path=%2F", "",
              "X-EXECD-ACCESS-TOKEN: s3crex\r\n");
  EXPECT_EQ(r.status, 401);
  r = request(port, "GET", "/files/info?path=%2F", "",
              "X-EXECD-ACCESS-TOKEN: s3cret\r\n");
  EXPECT_EQ(r.status, 200);
  r = request(port, "GET", "/proxy/" + std::to_string(port) + "/ping", "",
              "x-execd-access-token: s3cret\r\n");
  EXPECT_EQ(r.status, 200);
}

TEST_F(ExecdHttp, ExpectContinue) {
  int fd = connect_to(port);
  std::string body = R"({"command":"echo cont"})";
  send_all(fd, "POST /command HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               "Content-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n");
  std::string buf;
  while (buf.find("\r\n\r\n") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  EXPECT_EQ(buf.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << buf;
  buf.erase(0, buf.find("\r\n\r\n") + 4);
  send_all(fd, body);
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"cont\""), std::string::npos);
  ::close(fd);
}
