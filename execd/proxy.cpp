// execd's /proxy relay: the request and the response piece by piece through
// Beast parsers on both sides, and a raw byte relay after a 101.

#include "execd/proxy.hpp"

#include "base/http_framing.hpp"
#include "base/http_socket.hpp"
#include "base/log.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <optional>
#include <vector>

namespace osb::execd {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using base::timed_socket;

/// Upper bound for the upstream's status line plus header fields.
constexpr uint32_t header_limit = 64 * 1024;

constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";

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

/// The X-Forwarded-For value: the first hop of an incoming one, else
/// X-Real-IP, else the peer.
std::string forwarded_for(const http_request& req) {
  auto& xff = req.header("x-forwarded-for");
  if (!xff.empty()) {
    auto first = std::string_view{xff}.substr(0, xff.find(','));
    while (!first.empty() && first.front() == ' ')
      first.remove_prefix(1);
    while (!first.empty() && first.back() == ' ')
      first.remove_suffix(1);
    if (!first.empty())
      return std::string{first};
  }
  auto& real = req.header("x-real-ip");
  return real.empty() ? req.remote_addr : real;
}

/// One relayed exchange.
class relay_exchange {
public:
  relay_exchange(base::raw_connection& c, response_writer& w,
                 const http_request& req, uint16_t port)
    : w_(w),
      req_(req),
      port_(port),
      ts_(c.client()),
      buf_(c.buffer()),
      p_(c.parser()),
      keep_alive_(p_.get().keep_alive()) {
    // nop
  }

  /// Relays; returns false when the client connection must close.
  bool run(const std::string& target);

  /// The status relayed (or answered) to the client.
  int status() const {
    return status_;
  }

  /// Whether the answer went through the writer (a 502), not the socket.
  bool answered() const {
    return answered_;
  }

private:
  /// Answers 502 unless the response already started; returns whether the
  /// connection may continue.
  bool bad_gateway() {
    status_ = 502;
    if (client_written_)
      return false;
    if (!keep_alive_ || !p_.is_done())
      w_.close_connection();
    w_.send(502, "text/plain; charset=utf-8", "Bad Gateway");
    answered_ = true;
    return false;
  }

  bool send_request(timed_socket& ups, const std::string& target);
  bool relay_response(tcp::socket& up, timed_socket& ups);

  response_writer& w_;
  const http_request& req_;
  uint16_t port_;
  timed_socket& ts_;
  beast::flat_buffer& buf_;
  base::request_parser& p_;
  bool keep_alive_;
  bool client_written_ = false;
  bool answered_ = false;
  int status_ = 0;
  std::vector<char> piece_ = std::vector<char>(64 * 1024);
};

bool relay_exchange::run(const std::string& target) {
  tcp::socket up{ts_.socket().get_executor()};
  error_code ec;
  up.connect(tcp::endpoint{asio::ip::address_v4::loopback(), port_}, ec);
  if (ec)
    return bad_gateway();
  ::fcntl(up.native_handle(), F_SETFD, FD_CLOEXEC);
  up.set_option(tcp::no_delay{true}, ec);
  timed_socket ups{up};
  if (!send_request(ups, target))
    return false;
  return relay_response(up, ups);
}

/// Request: head, then the body piece by piece as it arrives.
bool relay_exchange::send_request(timed_socket& ups,
                                  const std::string& target) {
  auto& msg = p_.get();
  auto& upgrade = req_.header("upgrade");
  bool is_upgrade = !upgrade.empty()
                    && base::has_token(req_.header("connection"), "upgrade");
  bool expect_continue
    = base::has_token(req_.header("expect"), "100-continue");
  msg.target(target);
  for (auto f : {bhttp::field::connection, bhttp::field::keep_alive,
                 bhttp::field::proxy_connection, bhttp::field::te,
                 bhttp::field::trailer, bhttp::field::upgrade,
                 bhttp::field::expect, bhttp::field::proxy_authorization})
    msg.erase(f);
  msg.erase("X-Forwarded-Host");
  msg.set("X-Forwarded-For", forwarded_for(req_));
  msg.set("X-Forwarded-Proto", "http");
  if (is_upgrade) {
    msg.set(bhttp::field::connection, "Upgrade");
    msg.set(bhttp::field::upgrade, upgrade);
  } else {
    msg.set(bhttp::field::connection, "close");
  }
  error_code ec;
  bhttp::request_serializer<bhttp::buffer_body> sr{msg};
  bhttp::write_header(ups, sr, ec);
  if (ec)
    return bad_gateway();
  if (!p_.is_done() && expect_continue) {
    asio::write(ts_,
                asio::const_buffer{continue_100.data(), continue_100.size()},
                ec);
    if (ec)
      return false;
  }
  auto& buf = piece_;
  while (!sr.is_done()) {
    if (!p_.is_done()) {
      msg.body().data = buf.data();
      msg.body().size = buf.size();
      bhttp::read_some(ts_, buf_, p_, ec);
      if (ec == bhttp::error::need_buffer)
        ec = {};
      if (ec)
        return false;
      msg.body().size = buf.size() - msg.body().size;
      msg.body().data = buf.data();
      msg.body().more = !p_.is_done();
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
      keep_alive_ = false;
      return bad_gateway();
    }
  }
  return true;
}

/// Response: skip interim 1xx (except 101), relay the head right away, then
/// the body as it arrives, so that SSE events are not held back.
bool relay_exchange::relay_response(tcp::socket& up, timed_socket& ups) {
  error_code ec;
  beast::flat_buffer ubuf;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> rp;
  ups.watch_fd = ts_.fd();
  for (;;) {
    rp.emplace();
    rp->header_limit(header_limit);
    rp->body_limit(boost::none);
    if (req_.method == "HEAD")
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
    OSB_WARN("execd", "", "",
             "proxy: upstream 127.0.0.1:"
               << port_ << " sent a response with " << v.reason);
    return bad_gateway();
  }
  status_ = static_cast<int>(res.result_int());
  if (status_ == 101) {
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
      relay_raw(ts_.fd(), up.native_handle());
    return false;
  }
  for (auto f : {bhttp::field::connection, bhttp::field::keep_alive,
                 bhttp::field::proxy_connection, bhttp::field::te,
                 bhttp::field::trailer, bhttp::field::upgrade})
    res.erase(f);
  bool has_body = req_.method != "HEAD" && status_ != 204 && status_ != 304;
  if (has_body && !res.chunked() && !res.has_content_length())
    res.chunked(true); // upstream delimits by closing; we chunk instead
  res.version(11);
  res.keep_alive(keep_alive_);
  bhttp::response_serializer<bhttp::buffer_body> rs{res};
  bhttp::write_header(ts_, rs, ec);
  client_written_ = true;
  if (ec)
    return false;
  if (!has_body)
    return keep_alive_;
  auto& buf = piece_;
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
  return keep_alive_;
}

} // namespace

void relay(const http_request& req, uint16_t port, const std::string& target,
           response_writer& w) {
  auto* raw = w.raw();
  if (raw == nullptr) {
    w.send(502, "text/plain; charset=utf-8", "Bad Gateway");
    return;
  }
  relay_exchange x{*raw, w, req, port};
  auto again = x.run(target);
  if (!x.answered())
    raw->relayed(x.status(), again);
}

} // namespace osb::execd
