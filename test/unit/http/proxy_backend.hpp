#pragma once

// Test support for the server proxy: a small HTTP/1.1 + WebSocket upstream
// on 127.0.0.1 (thread per connection, Beast, synchronous) and a raw client
// that timestamps what it reads. Used by the unit tests of the streaming
// server (test/unit/http/forwarding_test.cpp) and by the integration tests
// against the real binary (test/integration/proxy_test.cpp).
//
// Routes of the backend:
//   /headers…          200, body: "<METHOD> <target>\n" + "name: value\n" per
//                      received field (lower-case names)
//   /upload            reads the body, 200 "bytes=<n> hash=<fnv1a64 hex>"
//   /download?n=N      200 with Content-Length N, bytes pattern_byte(i)
//   /chunked           200 chunked: "alpha", "beta", "gamma" 50 ms apart
//   /sse?n=N&ms=M      text/event-stream, N events "data: i" M ms apart
//   /eof               HTTP/1.0-style body delimited by close: "until-eof"
//   /gzip              Content-Encoding: gzip, 4 raw bytes 1f 8b 08 00
//   /status/NNN        status NNN, body "status NNN"
//   /hop               200 with hop-by-hop fields and `Connection: X-Hop`
//   /then-close        200 "closing", then closes the connection without
//                      having announced it (a stale keep-alive connection)
//   /ws                WebSocket echo (text and binary)
// HEAD works for every route (same header fields, no body).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace osb::test {

/// The byte at offset `i` of a /download body.
inline char pattern_byte(uint64_t i) {
  return static_cast<char>('a' + (i * 7 + i / 4096) % 26);
}

/// FNV-1a, 64 bit, incremental.
struct fnv1a {
  uint64_t value = 14695981039346656037ull;
  void add(const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      value ^= static_cast<unsigned char>(data[i]);
      value *= 1099511628211ull;
    }
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx",
                  static_cast<unsigned long long>(value));
    return buf;
  }
};

/// Returns the query parameter `key` of a target as a number, or `fallback`.
inline uint64_t query_number(std::string_view target, std::string_view key,
                             uint64_t fallback) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return fallback;
  auto query = target.substr(q + 1);
  std::string needle = std::string{key} + "=";
  size_t pos = 0;
  while (pos < query.size()) {
    auto amp = query.find('&', pos);
    auto part = query.substr(pos, amp == std::string_view::npos
                                    ? std::string_view::npos
                                    : amp - pos);
    if (part.substr(0, needle.size()) == needle)
      return std::stoull(std::string{part.substr(needle.size())});
    if (amp == std::string_view::npos)
      break;
    pos = amp + 1;
  }
  return fallback;
}

class test_backend {
public:
  test_backend() : acceptor_(ioc_) {
    using boost::asio::ip::tcp;
    tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), 0};
    acceptor_.open(ep.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~test_backend() {
    stop();
  }

  void stop() {
    if (stopped_.exchange(true))
      return;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      for (auto fd : open_fds_)
        ::shutdown(fd, SHUT_RDWR);
      threads = std::move(threads_);
    }
    for (auto& t : threads)
      t.join();
  }

  uint16_t port() const {
    return port_;
  }

  int connections() const {
    return connections_;
  }

  int requests() const {
    return requests_;
  }

  /// Waits until every connection accepted so far has ended on this side
  /// (the backend closed it: /then-close, EOF, an error), at most `timeout`;
  /// returns whether they have.
  bool wait_all_closed(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock{mtx_};
    return closed_cv_.wait_for(lock, timeout,
                               [this] { return closed_ == connections_; });
  }

  /// Target of the last request.
  std::string last_target() {
    std::lock_guard<std::mutex> guard{mtx_};
    return last_target_;
  }

  /// Every target received, in order.
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> guard{mtx_};
    return targets_;
  }

private:
  using tcp = boost::asio::ip::tcp;
  using fields = boost::beast::http::fields;

  void accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket sock{ioc_};
      acceptor_.accept(sock, ec);
      if (ec || stopped_)
        return;
      ++connections_;
      std::lock_guard<std::mutex> guard{mtx_};
      open_fds_.push_back(sock.native_handle());
      threads_.emplace_back([this, s = std::move(sock)]() mutable {
        serve(s);
        // Forget the descriptor before it closes: stop() must never shut
        // down a number that the process reuses meanwhile.
        std::lock_guard<std::mutex> guard{mtx_};
        open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(),
                                    s.native_handle()),
                        open_fds_.end());
        boost::system::error_code ec;
        s.close(ec);
        ++closed_;
        closed_cv_.notify_all();
      });
    }
  }

  static void write_all(tcp::socket& sock, std::string_view data) {
    boost::system::error_code ec;
    boost::asio::write(sock, boost::asio::buffer(data.data(), data.size()),
                       ec);
  }

  static std::string head(int status, std::string_view extra) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " "
                      + std::string{boost::beast::http::obsolete_reason(
                        boost::beast::http::int_to_status(
                          static_cast<unsigned>(status)))}
                      + "\r\nServer: test-backend\r\n";
    out += extra;
    out += "\r\n";
    return out;
  }

  static std::string chunk(std::string_view data) {
    char size[20];
    std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    return size + std::string{data} + "\r\n";
  }

  void serve(tcp::socket& sock) {
    namespace http = boost::beast::http;
    sock.set_option(tcp::no_delay(true));
    boost::beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(boost::none);
      boost::system::error_code ec;
      http::read(sock, buf, parser, ec);
      if (ec)
        break;
      auto& req = parser.get();
      ++requests_;
      std::string target{req.target()};
      {
        std::lock_guard<std::mutex> guard{mtx_};
        last_target_ = target;
        targets_.push_back(target);
      }
      bool head_only = req.method() == http::verb::head;
      auto path = target.substr(0, target.find('?'));
      if (path == "/ws" && boost::beast::websocket::is_upgrade(req)) {
        serve_websocket(sock, parser.release());
        return;
      }
      auto reply = [&](int status, std::string body, std::string extra = {}) {
        extra += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        auto out = head(status, extra);
        if (!head_only)
          out += body;
        write_all(sock, out);
      };
      if (path.rfind("/headers", 0) == 0) {
        std::string body = std::string{req.method_string()} + " " + target
                           + "\n";
        for (const auto& f : req) {
          std::string name{f.name_string()};
          for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          body += name + ": " + std::string{f.value()} + "\n";
        }
        body += "body: " + req.body() + "\n";
        reply(200, body, "Content-Type: text/plain\r\nX-Backend: yes\r\n");
      } else if (path == "/upload") {
        fnv1a h;
        h.add(req.body().data(), req.body().size());
        reply(200, "bytes=" + std::to_string(req.body().size())
                     + " hash=" + h.hex());
      } else if (path == "/download") {
        auto n = query_number(target, "n", 0);
        write_all(sock, head(200, "Content-Type: application/octet-stream\r\n"
                                  "Content-Length: "
                                    + std::to_string(n) + "\r\n"));
        if (!head_only) {
          std::string piece(64 * 1024, '\0');
          for (uint64_t off = 0; off < n; off += piece.size()) {
            auto len = std::min<uint64_t>(piece.size(), n - off);
            for (uint64_t i = 0; i < len; ++i)
              piece[i] = pattern_byte(off + i);
            write_all(sock, std::string_view{piece.data(), len});
          }
        }
      } else if (path == "/chunked") {
        write_all(sock, head(200, "Content-Type: text/plain\r\n"
                                  "Transfer-Encoding: chunked\r\n"));
        if (!head_only) {
          for (auto part : {"alpha", "beta", "gamma"}) {
            write_all(sock, chunk(part));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
          write_all(sock, "0\r\n\r\n");
        }
      } else if (path == "/sse") {
        auto n = query_number(target, "n", 3);
        auto ms = query_number(target, "ms", 100);
        write_all(sock, head(200, "Content-Type: text/event-stream\r\n"
                                  "Cache-Control: no-cache\r\n"
                                  "Transfer-Encoding: chunked\r\n"));
        for (uint64_t i = 0; i < n && !head_only; ++i) {
          write_all(sock, chunk("data: " + std::to_string(i) + "\n\n"));
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        }
        if (!head_only)
          write_all(sock, "0\r\n\r\n");
      } else if (path == "/eof") {
        write_all(sock, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                          + std::string{head_only ? "" : "until-eof"});
        break;
      } else if (path == "/gzip") {
        reply(200, std::string{"\x1f\x8b\x08\x00", 4},
              "Content-Encoding: gzip\r\nContent-Type: text/plain\r\n");
      } else if (path.rfind("/status/", 0) == 0) {
        auto status = std::stoi(path.substr(8));
        reply(status, "status " + std::to_string(status));
      } else if (path == "/then-close") {
        reply(200, "closing");
        break;
      } else if (path == "/hop") {
        reply(200, "hop",
              "Connection: X-Hop\r\nX-Hop: secret\r\nKeep-Alive: "
              "timeout=5\r\nTrailer: X-T\r\nX-Kept: yes\r\n");
      } else {
        reply(404, "no route " + path);
      }
      if (!req.keep_alive())
        break;
    }
    boost::system::error_code ec;
    sock.shutdown(tcp::socket::shutdown_send, ec);
  }

  void serve_websocket(tcp::socket& sock,
                       boost::beast::http::request<
                         boost::beast::http::string_body>
                         req) {
    namespace websocket = boost::beast::websocket;
    websocket::stream<tcp::socket&> ws{sock};
    boost::system::error_code ec;
    ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) {
        res.set("X-Backend", "ws");
      }));
    ws.accept(req, ec);
    if (ec)
      return;
    for (;;) {
      boost::beast::flat_buffer msg;
      ws.read(msg, ec);
      if (ec)
        return;
      ws.text(ws.got_text());
      ws.write(msg.data(), ec);
      if (ec)
        return;
    }
  }

  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopped_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::mutex mtx_;
  /// Connections ended (guarded by mtx_).
  int closed_ = 0;
  std::condition_variable closed_cv_;
  std::vector<int> open_fds_;
  std::vector<std::thread> threads_;
  std::string last_target_;
  std::vector<std::string> targets_;
};

/// A blocking loopback client that keeps its connection and records when
/// bytes arrive.
class stream_client {
public:
  explicit stream_client(uint16_t port, int timeout_s = 20) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{timeout_s, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_
      = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }

  ~stream_client() {
    ::close(fd_);
  }

  stream_client(const stream_client&) = delete;
  stream_client& operator=(const stream_client&) = delete;

  bool connected() const {
    return connected_;
  }

  bool send(std::string_view data) {
    size_t off = 0;
    while (off < data.size()) {
      auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  /// Reads once; appends to `buf`; false on EOF/error/timeout.
  bool fill() {
    char tmp[64 * 1024];
    auto n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0)
      return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  }

  /// Reads until `needle` is in `buf`; returns whether it showed up.
  bool read_until(std::string_view needle) {
    while (buf.find(needle) == std::string::npos)
      if (!fill())
        return false;
    return true;
  }

  /// Reads until EOF.
  void read_all() {
    while (fill()) {
      // keep reading
    }
  }

  struct reply {
    int status = 0;
    std::map<std::string, std::string> headers; ///< lower-case names
    std::string body;
    bool complete = false;
  };

  /// Reads one response (Content-Length, chunked or until EOF).
  reply read_response(bool head_request = false) {
    reply r;
    if (!read_until("\r\n\r\n"))
      return r;
    auto end = buf.find("\r\n\r\n");
    std::string head_str = buf.substr(0, end);
    buf.erase(0, end + 4);
    r.status = std::atoi(head_str.c_str() + 9);
    size_t pos = head_str.find("\r\n");
    while (pos != std::string::npos) {
      auto next = head_str.find("\r\n", pos + 2);
      auto line = head_str.substr(pos + 2, next == std::string::npos
                                             ? std::string::npos
                                             : next - pos - 2);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto name = line.substr(0, colon);
        for (auto& c : name)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
          value.erase(0, 1);
        if (r.headers.count(name) > 0)
          r.headers[name] += ", " + value;
        else
          r.headers[name] = value;
      }
      pos = next;
    }
    if (head_request || r.status == 204 || r.status == 304
        || r.status == 101) {
      r.complete = true;
      return r;
    }
    if (r.headers.count("content-length") > 0) {
      auto len = std::stoull(r.headers["content-length"]);
      while (buf.size() < len)
        if (!fill())
          return r;
      r.body = buf.substr(0, len);
      buf.erase(0, len);
      r.complete = true;
    } else if (r.headers["transfer-encoding"] == "chunked") {
      for (;;) {
        if (!read_until("\r\n"))
          return r;
        auto eol = buf.find("\r\n");
        auto len = std::stoull(buf.substr(0, eol), nullptr, 16);
        while (buf.size() < eol + 2 + len + 2)
          if (!fill())
            return r;
        if (len == 0) {
          buf.erase(0, eol + 4);
          r.complete = true;
          return r;
        }
        r.body += buf.substr(eol + 2, len);
        buf.erase(0, eol + 2 + len + 2);
      }
    } else {
      read_all();
      r.body = std::move(buf);
      buf.clear();
      r.complete = true;
    }
    return r;
  }

  std::string buf;

private:
  int fd_ = -1;
  bool connected_ = false;
};

/// Sends a minimal masked WebSocket frame (client → server); `opcode` 1 =
/// text, 2 = binary, 8 = close.
inline std::string ws_frame(int opcode, std::string_view payload) {
  std::string out;
  out += static_cast<char>(0x80 | opcode);
  auto n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>((n >> 8) & 0xff);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i)
      out += static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xff);
  }
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  for (auto m : mask)
    out += static_cast<char>(m);
  for (size_t i = 0; i < n; ++i)
    out += static_cast<char>(payload[i] ^ mask[i % 4]);
  return out;
}

/// Parses one unmasked server frame at the front of `buf`; returns false if
/// incomplete. Consumes it on success; `fin` tells whether it ends its
/// message.
inline bool ws_parse(std::string& buf, int& opcode, std::string& payload,
                     bool* fin = nullptr) {
  if (buf.size() < 2)
    return false;
  auto b0 = static_cast<unsigned char>(buf[0]);
  auto b1 = static_cast<unsigned char>(buf[1]);
  uint64_t n = b1 & 0x7f;
  size_t off = 2;
  if (n == 126) {
    if (buf.size() < 4)
      return false;
    n = (static_cast<unsigned char>(buf[2]) << 8)
        | static_cast<unsigned char>(buf[3]);
    off = 4;
  } else if (n == 127) {
    if (buf.size() < 10)
      return false;
    n = 0;
    for (int i = 0; i < 8; ++i)
      n = (n << 8) | static_cast<unsigned char>(buf[2 + i]);
    off = 10;
  }
  if (buf.size() < off + n)
    return false;
  opcode = b0 & 0x0f;
  payload = buf.substr(off, n);
  buf.erase(0, off + n);
  if (fin != nullptr)
    *fin = (b0 & 0x80) != 0;
  return true;
}

/// Reads one whole message (continuation frames joined) from `c`; returns
/// false on EOF before it is complete.
template <class Client>
bool ws_read_message(Client& c, int& opcode, std::string& payload) {
  payload.clear();
  opcode = -1;
  for (;;) {
    int op = 0;
    bool fin = false;
    std::string part;
    while (!ws_parse(c.buf, op, part, &fin))
      if (!c.fill())
        return false;
    if (opcode < 0)
      opcode = op;
    payload += part;
    if (fin)
      return true;
  }
}

} // namespace osb::test
