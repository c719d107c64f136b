#pragma once

// What the execd tests over real HTTP share: a raw HTTP/1.1 client on
// loopback and a fixture that runs execd's server (execd/server.hpp) on
// port 0 with the API router.

#include "base/strings.hpp"
#include "execd/routes.hpp"
#include "execd/server.hpp"
#include "execd/util.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd::test {

inline int connect_to(uint16_t port) {
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

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

/// Reads more bytes into `buf`; false on EOF/timeout.
inline bool fill(int fd, std::string& buf) {
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
inline response read_response(int fd, std::string& buf, bool head = false) {
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
inline response request(uint16_t port, const std::string& method,
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

inline std::vector<rapidjson::Document> events(const std::string& body) {
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

} // namespace osb::execd::test
