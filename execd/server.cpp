// The only Boost.Beast translation unit of execd: the listener, the
// connection loop, the response writer and the /proxy relay.

#include "execd/server.hpp"

#include "base/http_framing.hpp"
#include "base/secure_compare.hpp"

#include "execd/log.hpp"
#include "execd/util.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace osb::execd {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

/// Upper bound for the request line plus header fields.
constexpr uint32_t header_limit = 64 * 1024;

/// How long a request body may stall.
constexpr int body_timeout_ms = 300 * 1000;

/// An unread request body up to this size is skipped to keep the connection.
constexpr size_t max_skip_body = 4 * 1024 * 1024;

std::string to_string(beast::string_view x) {
  return std::string{x.data(), x.size()};
}

/// A blocking socket with a poll()-based read timeout, usable as a Beast
/// SyncReadStream/SyncWriteStream. (Asio's own synchronous reads ignore
/// SO_RCVTIMEO.) Optionally a read also fails once another descriptor's
/// peer hung up, so that a proxied stream stops when its client left.
class timed_socket {
public:
  explicit timed_socket(tcp::socket& s) : s_(s) {
    // nop
  }

  int fd() {
    return s_.native_handle();
  }

  /// Read timeout; -1 = none.
  int timeout_ms = -1;

  /// When >= 0: fail reads once this descriptor's peer closed.
  int watch_fd = -1;

  /// When set: reads fail with timed_out once it has passed (a bound on a
  /// whole header, however slowly its bytes trickle in).
  std::optional<std::chrono::steady_clock::time_point> deadline;

  /// Waits until a byte (or EOF) can be read, within `timeout_ms`.
  bool wait_readable(error_code& ec) {
    if (timeout_ms < 0 && watch_fd < 0 && !deadline)
      return true;
    pollfd p[2] = {{fd(), POLLIN, 0}, {watch_fd, POLLRDHUP, 0}};
    nfds_t n = watch_fd >= 0 ? 2 : 1;
    for (;;) {
      auto wait_ms = timeout_ms;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      *deadline - std::chrono::steady_clock::now())
                      .count();
        if (left <= 0) {
          ec = asio::error::timed_out;
          return false;
        }
        if (wait_ms < 0 || left < wait_ms)
          wait_ms = static_cast<int>(left);
      }
      auto rc = ::poll(p, n, wait_ms);
      if (rc < 0) {
        if (errno == EINTR)
          continue;
        ec = error_code{errno, boost::system::system_category()};
        return false;
      }
      if (rc == 0) {
        if (deadline && std::chrono::steady_clock::now() < *deadline)
          continue; // woke early for the deadline's rounding
        ec = asio::error::timed_out;
        return false;
      }
      if (p[0].revents != 0)
        return true;
      if (n == 2 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
        ec = asio::error::connection_aborted;
        return false;
      }
    }
  }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& b, error_code& ec) {
    if (!wait_readable(ec))
      return 0;
    return s_.read_some(b, ec);
  }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& b) {
    error_code ec;
    auto n = read_some(b, ec);
    if (ec)
      throw boost::system::system_error{ec};
    return n;
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& b, error_code& ec) {
    return s_.write_some(b, ec);
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& b) {
    return s_.write_some(b);
  }

private:
  tcp::socket& s_;
};

/// Writes responses to a connection.
class beast_writer final : public response_writer {
public:
  beast_writer(timed_socket& s, bool keep_alive, bool head)
    : s_(s), keep_alive_(keep_alive), head_(head) {
    // nop
  }

  bool send(int status, std::string_view content_type, std::string_view body,
            const header_list& extra) override {
    if (started_)
      return false;
    started_ = true;
    finished_ = true;
    status_ = status;
    bhttp::response<bhttp::string_body> res;
    res.result(static_cast<unsigned>(status));
    res.version(11);
    if (!content_type.empty())
      res.set(bhttp::field::content_type,
              beast::string_view{content_type.data(), content_type.size()});
    for (auto& [k, v] : extra)
      res.set(k, v);
    res.body().assign(body.data(), body.size());
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    error_code ec;
    if (head_) {
      bhttp::response_serializer<bhttp::string_body> sr{res};
      bhttp::write_header(s_, sr, ec);
    } else {
      bhttp::write(s_, res, ec);
    }
    failed_ = static_cast<bool>(ec);
    return !failed_;
  }

  bool begin(int status, std::string_view content_type,
             std::optional<uint64_t> length,
             const header_list& extra) override {
    if (started_)
      return false;
    started_ = true;
    status_ = status;
    bhttp::response<bhttp::empty_body> res;
    res.result(static_cast<unsigned>(status));
    res.version(11);
    if (!content_type.empty())
      res.set(bhttp::field::content_type,
              beast::string_view{content_type.data(), content_type.size()});
    for (auto& [k, v] : extra)
      res.set(k, v);
    if (length) {
      res.content_length(*length);
    } else {
      res.chunked(true);
      chunked_ = true;
    }
    res.keep_alive(keep_alive_);
    if (keep_alive_ && chunked_)
      res.set(bhttp::field::connection, "keep-alive");
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    error_code ec;
    bhttp::write_header(s_, sr, ec);
    failed_ = static_cast<bool>(ec);
    return !failed_;
  }

  bool write(std::string_view data) override {
    if (!started_ || finished_ || failed_)
      return false;
    if (data.empty() || head_)
      return true;
    error_code ec;
    asio::const_buffer b{data.data(), data.size()};
    if (chunked_)
      asio::write(s_, bhttp::make_chunk(b), ec);
    else
      asio::write(s_, b, ec);
    failed_ = static_cast<bool>(ec);
    return !failed_;
  }

  bool finish() override {
    if (finished_)
      return !failed_;
    finished_ = true;
    if (chunked_ && !failed_ && !head_) {
      error_code ec;
      asio::write(s_, bhttp::make_chunk_last(), ec);
      failed_ = static_cast<bool>(ec);
    }
    return !failed_;
  }

  bool started() const override {
    return started_;
  }

  int status() const override {
    return status_;
  }

  bool failed() const {
    return failed_;
  }

private:
  timed_socket& s_;
  bool keep_alive_;
  bool head_;
  bool started_ = false;
  bool finished_ = false;
  bool chunked_ = false;
  bool failed_ = false;
  int status_ = 0;
};

using request_parser = bhttp::request_parser<bhttp::buffer_body>;

/// Reads a request body through the parser (buffer_body: no copy of the
/// whole body). Sends `100 Continue` before the first read if asked.
class beast_body_reader final : public body_reader {
public:
  beast_body_reader(timed_socket& s, beast::flat_buffer& buf,
                    request_parser& p, bool expect_continue)
    : s_(s), buf_(buf), p_(p), expect_continue_(expect_continue) {
    // nop
  }

  long read(char* out, size_t n) override {
    if (p_.is_done())
      return 0;
    if (expect_continue_) {
      expect_continue_ = false;
      static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
      error_code ec;
      asio::write(s_, asio::const_buffer{cont.data(), cont.size()}, ec);
      if (ec)
        return -1;
    }
    for (;;) {
      p_.get().body().data = out;
      p_.get().body().size = n;
      error_code ec;
      bhttp::read_some(s_, buf_, p_, ec);
      if (ec == bhttp::error::need_buffer)
        ec = {};
      if (ec)
        return -1;
      auto got = n - p_.get().body().size;
      if (got > 0 || p_.is_done())
        return static_cast<long>(got);
    }
  }

private:
  timed_socket& s_;
  beast::flat_buffer& buf_;
  request_parser& p_;
  bool expect_continue_;
};

struct server_state {
  server_options opts;
  http_handler handler;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::mutex mtx;
  std::condition_variable cv;
  std::set<int> conns;
  std::thread accept_thread;
};

bool has_token(std::string_view list, std::string_view token) {
  auto lower = ascii_lower(list);
  size_t i = 0;
  while (i <= lower.size()) {
    auto j = lower.find(',', i);
    auto item = std::string_view{lower}.substr(
      i, j == std::string::npos ? std::string::npos : j - i);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item == token)
      return true;
    if (j == std::string::npos)
      break;
    i = j + 1;
  }
  return false;
}

/// Copies bytes both ways between two sockets until both directions ended
/// (WebSocket and other upgraded connections).
void relay_raw(int a, int b) {
  bool open[2] = {true, true}; // a->b, b->a
  std::vector<char> buf(64 * 1024);
  auto send_all = [](int fd, const char* p, size_t n) {
    while (n > 0) {
      auto w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR)
          continue;
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  };
  while (open[0] || open[1]) {
    pollfd p[2];
    nfds_t n = 0;
    int dirs[2];
    if (open[0]) {
      dirs[n] = 0;
      p[n++] = pollfd{a, POLLIN, 0};
    }
    if (open[1]) {
      dirs[n] = 1;
      p[n++] = pollfd{b, POLLIN, 0};
    }
    if (::poll(p, n, -1) < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (p[i].revents == 0)
        continue;
      int from = dirs[i] == 0 ? a : b;
      int to = dirs[i] == 0 ? b : a;
      auto got = ::recv(from, buf.data(), buf.size(), 0);
      if (got > 0) {
        if (!send_all(to, buf.data(), static_cast<size_t>(got)))
          return;
        continue;
      }
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        return;
      open[dirs[i]] = false;
      ::shutdown(to, SHUT_WR);
    }
  }
}

class connection {
public:
  connection(std::shared_ptr<server_state> srv, tcp::socket sock)
    : srv_(std::move(srv)), sock_(std::move(sock)), ts_(sock_) {
    error_code ec;
    auto ep = sock_.remote_endpoint(ec);
    if (!ec)
      peer_ = ep.address().to_string();
  }

  void run() {
    for (bool first = true;; first = false) {
      request_parser p;
      p.header_limit(header_limit);
      p.body_limit(boost::none);
      error_code ec;
      // Between requests the idle timeout applies until the next request's
      // first byte; from then on (and on a new connection from the start)
      // its header must arrive within the header timeout.
      if (!first && buf_.size() == 0) {
        ts_.timeout_ms
          = static_cast<int>(srv_->opts.idle_timeout.count() * 1000);
        if (!ts_.wait_readable(ec))
          break;
      }
      ts_.timeout_ms = -1;
      ts_.deadline
        = std::chrono::steady_clock::now() + srv_->opts.header_timeout;
      bhttp::read_header(ts_, buf_, p, ec);
      ts_.deadline.reset();
      if (ec) {
        if (ec.category()
              == bhttp::make_error_code(bhttp::error::end_of_stream).category()
            && ec != bhttp::error::end_of_stream
            && ec != bhttp::error::partial_message) {
          beast_writer w{ts_, false, false};
          w.send(400, "text/plain; charset=utf-8", "Bad Request", {});
          linger();
        }
        break;
      }
      // RFC 9112 §6.3: a body whose length is in doubt ends the connection.
      if (auto v = base::check_request_framing(p.get(), p.get().version());
          !v) {
        EXECD_WARN("request from " << peer_ << " rejected: " << v.reason);
        beast_writer w{ts_, false, false};
        w.send(v.status, "text/plain; charset=utf-8",
               v.status == 501 ? "Not Implemented" : "Bad Request", {});
        linger();
        break;
      }
      ts_.timeout_ms = body_timeout_ms;
      http_request req;
      auto& msg = p.get();
      req.method = to_string(msg.method_string());
      req.set_target(to_string(msg.target()));
      for (auto& f : msg)
        req.headers.emplace_back(ascii_lower(to_string(f.name_string())),
                                 to_string(f.value()));
      req.remote_addr = peer_;
      bool keep_alive = msg.keep_alive();
      auto start = std::chrono::steady_clock::now();
      int status = 0;
      auto target = req.target;
      bool ok = dispatch(p, req, keep_alive, status);
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
      EXECD_INFO(req.method << ' ' << target << ' ' << status << ' '
                            << us / 1000 << '.' << (us % 1000) / 100 << "ms");
      if (!ok || !keep_alive)
        break;
    }
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
  }

  int fd() {
    return sock_.native_handle();
  }

private:
  /// Half-closes, then discards what the client still sends (a rejected
  /// body) for a moment: closing with unread data would send a RST, which
  /// can destroy the error response before the client has read it.
  void linger() {
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    ts_.timeout_ms = 1000;
    ts_.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::vector<char> sink(16 * 1024);
    size_t left = 4 * 1024 * 1024;
    buf_.clear();
    while (left > 0) {
      auto n = ts_.read_some(asio::buffer(sink), ec);
      if (ec || n == 0)
        break;
      left -= std::min(left, n);
    }
    ts_.deadline.reset();
  }

  /// Handles one request; returns false when the connection must close.
  bool dispatch(request_parser& p, http_request& req, bool& keep_alive,
                int& status) {
    auto& token = srv_->opts.access_token;
    // The health ping stays open (readiness probes carry no credential);
    // everything else needs the sandbox's token.
    bool open_ping = req.path == "/ping" && req.method == "GET";
    if (!token.empty() && !open_ping
        && !constant_time_equal(req.header("x-execd-access-token"), token)) {
      status = 401;
      keep_alive = keep_alive && p.is_done();
      beast_writer w{ts_, keep_alive, false};
      w.send(401, "application/json",
             R"({"error":"Unauthorized: invalid or missing header X-EXECD-ACCESS-TOKEN"})",
             {});
      return !w.failed();
    }
    // /proxy/{port}/{rest}: to our own port it loops back in-process.
    while (req.path == "/proxy" || req.path.rfind("/proxy/", 0) == 0) {
      auto rest = std::string_view{req.path}.substr(
        std::min<size_t>(req.path.size(), 7));
      auto slash = rest.find('/');
      auto port_text = rest.substr(0, slash);
      auto port = parse_u64(port_text);
      if (!port || *port == 0 || *port > 65535) {
        status = 400;
        keep_alive = keep_alive && p.is_done();
        beast_writer w{ts_, keep_alive, false};
        w.send(400, "text/plain; charset=utf-8",
               "invalid or missing port in proxy path", {});
        return !w.failed();
      }
      std::string target = slash == std::string_view::npos
                              ? std::string{"/"}
                              : std::string{rest.substr(slash)};
      if (!req.query.empty())
        target += "?" + req.query;
      if (*port == srv_->port) {
        req.set_target(target);
        continue;
      }
      return proxy(p, req, static_cast<uint16_t>(*port), target, keep_alive,
                   status);
    }
    bool expect_continue
      = has_token(req.header("expect"), "100-continue") && !p.is_done();
    beast_writer w{ts_, keep_alive, req.method == "HEAD"};
    beast_body_reader body{ts_, buf_, p, expect_continue};
    try {
      srv_->handler(req, body, w);
    } catch (const std::exception& e) {
      EXECD_ERROR("handler failed: " << e.what());
      if (!w.started()) {
        w.send(500, "application/json",
               R"({"code":"UNKNOWN","message":"internal error"})", {});
      } else {
        status = w.status();
        return false;
      }
    }
    if (!w.started())
      w.send(500, "application/json",
             R"({"code":"UNKNOWN","message":"no response"})", {});
    w.finish();
    status = w.status();
    if (w.failed())
      return false;
    if (!p.is_done()) {
      // Skip an unread body so the connection can be reused.
      std::vector<char> sink(64 * 1024);
      size_t skipped = 0;
      while (!p.is_done() && skipped < max_skip_body) {
        auto n = body.read(sink.data(), sink.size());
        if (n <= 0)
          break;
        skipped += static_cast<size_t>(n);
      }
      if (!p.is_done())
        return false;
    }
    return true;
  }

  /// The X-Forwarded-For value: the first hop of an incoming one, else
  /// X-Real-IP, else the peer.
  std::string forwarded_for(const http_request& req) const {
    auto xff = req.header("x-forwarded-for");
    if (!xff.empty()) {
      auto first = std::string_view{xff}.substr(0, xff.find(','));
      while (!first.empty() && first.front() == ' ')
        first.remove_prefix(1);
      while (!first.empty() && first.back() == ' ')
        first.remove_suffix(1);
      if (!first.empty())
        return std::string{first};
    }
    auto real = req.header("x-real-ip");
    return real.empty() ? peer_ : real;
  }

  /// Relays the request to 127.0.0.1:`port`; returns false when the client
  /// connection must close.
  bool proxy(request_parser& p, const http_request& req, uint16_t port,
             const std::string& target, bool& keep_alive, int& status) {
    auto& msg = p.get();
    tcp::socket up{srv_->ioc};
    error_code ec;
    bool client_written = false;
    auto bad_gateway = [&] {
      status = 502;
      if (client_written)
        return false;
      keep_alive = keep_alive && p.is_done();
      beast_writer w{ts_, keep_alive, false};
      w.send(502, "text/plain; charset=utf-8", "Bad Gateway", {});
      return !w.failed() && keep_alive;
    };
    up.connect(tcp::endpoint{asio::ip::address_v4::loopback(), port}, ec);
    if (ec)
      return bad_gateway();
    ::fcntl(up.native_handle(), F_SETFD, FD_CLOEXEC);
    up.set_option(tcp::no_delay{true}, ec);
    timed_socket ups{up};
    auto upgrade = req.header("upgrade");
    bool is_upgrade
      = !upgrade.empty() && has_token(req.header("connection"), "upgrade");
    bool expect_continue = has_token(req.header("expect"), "100-continue");
    msg.target(target);
    for (auto f : {bhttp::field::connection, bhttp::field::keep_alive,
                   bhttp::field::proxy_connection, bhttp::field::te,
                   bhttp::field::trailer, bhttp::field::upgrade,
                   bhttp::field::expect, bhttp::field::proxy_authorization})
      msg.erase(f);
    msg.erase("X-Forwarded-Host");
    msg.set("X-Forwarded-For", forwarded_for(req));
    msg.set("X-Forwarded-Proto", "http");
    if (is_upgrade) {
      msg.set(bhttp::field::connection, "Upgrade");
      msg.set(bhttp::field::upgrade, upgrade);
    } else {
      msg.set(bhttp::field::connection, "close");
    }
    // Request: head, then the body piece by piece as it arrives.
    bhttp::request_serializer<bhttp::buffer_body> sr{msg};
    bhttp::write_header(ups, sr, ec);
    if (ec)
      return bad_gateway();
    std::vector<char> buf(64 * 1024);
    if (!p.is_done() && expect_continue) {
      static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::write(ts_, asio::const_buffer{cont.data(), cont.size()}, ec);
      if (ec)
        return false;
    }
    while (!sr.is_done()) {
      if (!p.is_done()) {
        msg.body().data = buf.data();
        msg.body().size = buf.size();
        bhttp::read_some(ts_, buf_, p, ec);
        if (ec == bhttp::error::need_buffer)
          ec = {};
        if (ec)
          return false;
        msg.body().size = buf.size() - msg.body().size;
        msg.body().data = buf.data();
        msg.body().more = !p.is_done();
        // An empty piece would go out as the terminating zero-size chunk.
        if (msg.body().size == 0 && msg.body().more)
          continue;
      } else {
        msg.body().data = nullptr;
        msg.body().size = 0;
        msg.body().more = false;
      }
      bhttp::write(ups, sr, ec);
      if (ec == bhttp::error::need_buffer)
        ec = {};
      if (ec) {
        keep_alive = false;
        return bad_gateway();
      }
    }
    // Response: skip interim 1xx (except 101), relay the head right away,
    // then the body as it arrives, so that SSE events are not held back.
    beast::flat_buffer ubuf;
    std::optional<bhttp::response_parser<bhttp::buffer_body>> rp;
    ups.watch_fd = fd();
    for (;;) {
      rp.emplace();
      rp->header_limit(header_limit);
      rp->body_limit(boost::none);
      if (req.method == "HEAD")
        rp->skip(true);
      bhttp::read_header(ups, ubuf, *rp, ec);
      if (ec)
        return bad_gateway();
      auto code = rp->get().result_int();
      if (code >= 100 && code < 200 && code != 101)
        continue;
      break;
    }
    auto& res = rp->get();
    // The body is re-framed towards the client: a length in doubt, or
    // codings that would be dropped, make the response unusable.
    if (auto v = base::check_response_framing(res, res.version()); !v) {
      EXECD_WARN("proxy: upstream 127.0.0.1:" << port
                                              << " sent a response with "
                                              << v.reason);
      return bad_gateway();
    }
    status = static_cast<int>(res.result_int());
    if (status == 101) {
      bhttp::response_serializer<bhttp::buffer_body> rs{res};
      bhttp::write_header(ts_, rs, ec);
      if (ec)
        return false;
      if (ubuf.size() > 0)
        asio::write(ts_, ubuf.data(), ec);
      if (!ec && buf_.size() > 0)
        asio::write(ups, buf_.data(), ec);
      buf_.consume(buf_.size());
      if (!ec)
        relay_raw(fd(), up.native_handle());
      return false;
    }
    for (auto f : {bhttp::field::connection, bhttp::field::keep_alive,
                   bhttp::field::proxy_connection, bhttp::field::te,
                   bhttp::field::trailer, bhttp::field::upgrade})
      res.erase(f);
    bool has_body = req.method != "HEAD" && status != 204 && status != 304;
    if (has_body && !res.chunked() && !res.has_content_length())
      res.chunked(true); // upstream delimits by closing; we chunk instead
    res.version(11);
    res.keep_alive(keep_alive);
    bhttp::response_serializer<bhttp::buffer_body> rs{res};
    bhttp::write_header(ts_, rs, ec);
    client_written = true;
    if (ec)
      return false;
    if (!has_body)
      return keep_alive;
    while (!rs.is_done()) {
      if (!rp->is_done()) {
        res.body().data = buf.data();
        res.body().size = buf.size();
        bhttp::read_some(ups, ubuf, *rp, ec);
        if (ec == bhttp::error::need_buffer)
          ec = {};
        if (ec)
          return false; // truncated: closing tells the client
        res.body().size = buf.size() - res.body().size;
        res.body().data = buf.data();
        res.body().more = !rp->is_done();
        if (res.body().size == 0 && res.body().more)
          continue;
      } else {
        res.body().data = nullptr;
        res.body().size = 0;
        res.body().more = false;
      }
      bhttp::write(ts_, rs, ec);
      if (ec == bhttp::error::need_buffer)
        ec = {};
      if (ec)
        return false;
    }
    return keep_alive;
  }

  std::shared_ptr<server_state> srv_;
  tcp::socket sock_;
  timed_socket ts_;
  beast::flat_buffer buf_;
  std::string peer_;
};

void accept_loop(std::shared_ptr<server_state> st) {
  while (!st->stopping) {
    pollfd pfd{st->acceptor.native_handle(), POLLIN, 0};
    auto rc = ::poll(&pfd, 1, 200);
    if (rc <= 0)
      continue;
    tcp::socket sock{st->ioc};
    error_code ec;
    st->acceptor.accept(sock, ec);
    if (ec) {
      if (!st->stopping)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int fd = sock.native_handle();
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    sock.set_option(tcp::no_delay{true}, ec);
    {
      std::lock_guard<std::mutex> guard{st->mtx};
      if (st->conns.size() >= st->opts.max_connections) {
        EXECD_WARN("too many connections, refusing one");
        continue;
      }
      st->conns.insert(fd);
    }
    std::thread{[st, s = std::move(sock)]() mutable {
      auto c = std::make_unique<connection>(st, std::move(s));
      auto fd = c->fd();
      c->run();
      {
        // Close under the lock, so stop() never shuts down a recycled
        // descriptor.
        std::lock_guard<std::mutex> guard{st->mtx};
        st->conns.erase(fd);
        c.reset();
      }
      st->cv.notify_all();
    }}.detach();
  }
}

class server_impl final : public http_server {
public:
  explicit server_impl(std::shared_ptr<server_state> st) : st_(std::move(st)) {
    // nop
  }

  ~server_impl() override {
    stop();
  }

  uint16_t port() const override {
    return st_->port;
  }

  void stop() override {
    if (st_->stopping.exchange(true))
      return;
    if (st_->accept_thread.joinable())
      st_->accept_thread.join();
    error_code ec;
    st_->acceptor.close(ec);
    std::unique_lock<std::mutex> guard{st_->mtx};
    for (auto fd : st_->conns)
      ::shutdown(fd, SHUT_RDWR);
    st_->cv.wait_for(guard, std::chrono::seconds(10),
                     [&] { return st_->conns.empty(); });
  }

private:
  std::shared_ptr<server_state> st_;
};

} // namespace

std::unique_ptr<http_server> http_server::start(server_options opts,
                                                http_handler handler,
                                                std::string* err) {
  auto st = std::make_shared<server_state>();
  st->opts = std::move(opts);
  st->handler = std::move(handler);
  error_code ec;
  auto addr = asio::ip::make_address_v4(st->opts.host, ec);
  if (ec) {
    if (err != nullptr)
      *err = "invalid listen address " + st->opts.host;
    return nullptr;
  }
  tcp::endpoint ep{addr, st->opts.port};
  st->acceptor.open(ep.protocol(), ec);
  if (!ec) {
    ::fcntl(st->acceptor.native_handle(), F_SETFD, FD_CLOEXEC);
    st->acceptor.set_option(asio::socket_base::reuse_address{true}, ec);
    st->acceptor.bind(ep, ec);
  }
  if (!ec)
    st->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (err != nullptr)
      *err = "cannot listen on " + st->opts.host + ":"
             + std::to_string(st->opts.port) + ": " + ec.message();
    return nullptr;
  }
  st->port = st->acceptor.local_endpoint().port();
  st->accept_thread = std::thread{accept_loop, st};
  return std::make_unique<server_impl>(st);
}

} // namespace osb::execd
