// The server proxy's forwarding of a streamed request: connects (or reuses
// a kept connection to) the upstream, answers `Expect: 100-continue` once
// the upstream is there, streams the request body up and the response
// down piece by piece with our own framing, and keeps both connections
// for the next request when both sides allow it. A 101 answer to a
// WebSocket handshake continues in tunnel.cpp. See session.hpp.

#include "http/session.hpp"

#include "base/log.hpp"
#include "core/server_metrics.hpp"
#include "net/proxy.hpp"

#include <sys/socket.h>

#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cstdio>

namespace osb::http::detail {

namespace {

/// Buffers of one relayed piece: a head (possibly empty), and a body piece,
/// chunk-framed when `chunked`; with `last`, the terminating chunk too.
/// Unused slots stay empty, which gather writes skip.
using piece_buffers = std::array<asio::const_buffer, 4>;

piece_buffers frame_piece(std::string_view head, char (&size_line)[24],
                          const char* data, size_t n, bool chunked,
                          bool last) {
  static constexpr std::string_view crlf = "\r\n";
  static constexpr std::string_view crlf_last = "\r\n0\r\n\r\n";
  static constexpr std::string_view last_chunk = "0\r\n\r\n";
  piece_buffers bufs{};
  bufs[0] = asio::buffer(head.data(), head.size());
  if (!chunked) {
    bufs[2] = asio::buffer(data, n);
    return bufs;
  }
  if (n > 0) {
    auto len = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
    bufs[1] = asio::buffer(size_line, static_cast<size_t>(len));
    bufs[2] = asio::buffer(data, n);
    bufs[3] = last ? asio::buffer(crlf_last.data(), crlf_last.size())
                   : asio::buffer(crlf.data(), crlf.size());
  } else if (last) {
    bufs[3] = asio::buffer(last_chunk.data(), last_chunk.size());
  }
  return bufs;
}

/// Parses body bytes that already sit in `in` into `out` without touching
/// the socket, so that a small message travels in one write with its head.
/// Returns the number of body bytes in `out`.
template <class Parser>
size_t pull_buffered(Parser& p, beast::flat_buffer& in, char* out, size_t cap,
                     error_code& ec) {
  auto& body = p.get().body();
  body.data = out;
  body.size = cap;
  body.more = true;
  while (!p.is_done() && in.size() > 0 && body.size > 0) {
    auto used = p.put(in.data(), ec);
    in.consume(used);
    if (ec == bhttp::error::need_buffer || ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0)
      break;
  }
  return cap - body.size;
}

} // namespace

response session::error_response(forward_spec& fwd, forward_error kind,
                                 const std::string& detail) {
  if (fwd.on_error) {
    try {
      return fwd.on_error(kind, detail);
    } catch (...) {
      // fall through to the generic answer
    }
  }
  return plain_response(kind == forward_error::connect ? 502 : 500,
                        "Bad Gateway");
}

void session::start_forward(std::shared_ptr<forward_spec> fwd) {
  ops_metrics().proxy_requests.inc();
  fwd_ = std::move(fwd);
  response_started_ = false;
  upstream_write_failed_ = false;
  retried_ = false;
  if (!up_buf_) {
    up_buf_ = std::make_unique<char[]>(relay_buffer_size);
    down_buf_ = std::make_unique<char[]>(relay_buffer_size);
  }
  if (upstream_ && upstream_port_ == fwd_->port
      && upstream_host_ == fwd_->host && upstream_usable()) {
    upstream_reused_ = true;
    return on_upstream_ready();
  }
  do_connect();
}

void session::do_connect() {
  ops_metrics().proxy_connections.inc();
  close_upstream();
  error_code ec;
  auto addr = asio::ip::make_address(fwd_->host, ec);
  if (ec)
    return fail_forward(forward_error::connect,
                        "invalid address " + fwd_->host);
  upstream_reused_ = false;
  upstream_.emplace(stream_.get_executor());
  if (fwd_->bind_source) {
    auto& sock = upstream_->socket();
    sock.open(addr.is_v4() ? tcp::v4() : tcp::v6(), ec);
    if (!ec)
      sock.bind(tcp::endpoint{addr, 0}, ec);
    if (ec)
      return fail_forward(forward_error::connect,
                          fwd_->host + " is no longer an address of this "
                                       "machine (docker.proxy_host): "
                            + ec.message());
  }
  upstream_->expires_after(upstream_connect_timeout);
  upstream_->async_connect(tcp::endpoint{addr, fwd_->port},
                           beast::bind_front_handler(
                             &session::on_connect, shared_from_this()));
}

void session::on_connect(error_code ec) {
  if (ec) {
    if (ec == beast::error::timeout)
      return fail_forward(forward_error::connect, "connect timed out");
    return fail_forward(forward_error::connect, ec.message());
  }
  upstream_->socket().set_option(tcp::no_delay(true), ec);
  upstream_host_ = fwd_->host;
  upstream_port_ = fwd_->port;
  on_upstream_ready();
}

bool session::upstream_usable() {
  if (upstream_buffer_.size() > 0)
    return false;
  if (bodyless_request()
      && std::chrono::steady_clock::now() - upstream_used_at_
           < std::chrono::seconds(1))
    return true;
  char c;
  auto n = ::recv(upstream_->socket().native_handle(), &c, 1,
                  MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool session::bodyless_request() {
  if (sparser_->chunked())
    return false;
  auto len = sparser_->content_length();
  return !len || *len == 0;
}

void session::on_upstream_ready() {
  // The client waits for this before it sends a body; send it only now
  // that the upstream is there (an error answer makes the body moot).
  if (expect_continue_ && !sparser_->is_done()) {
    expect_continue_ = false;
    static constexpr std::string_view continue_msg
      = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(client_idle_timeout);
    asio::async_write(stream_,
                      asio::buffer(continue_msg.data(), continue_msg.size()),
                      beast::bind_front_handler(
                        &session::on_forward_continue, shared_from_this()));
    return;
  }
  do_write_request_head();
}

void session::on_forward_continue(error_code ec, size_t) {
  if (ec) {
    close_upstream();
    return do_close();
  }
  do_write_request_head();
}

void session::do_write_request_head() {
  auto& msg = sparser_->get();
  auto& out = up_head_;
  out.clear();
  out.append(msg.method_string().data(), msg.method_string().size());
  out += ' ';
  append_value(out, fwd_->target);
  out += " HTTP/1.1\r\nHost: ";
  if (fwd_->host.find(':') != std::string::npos) {
    out += '[';
    out += fwd_->host;
    out += ']';
  } else {
    out += fwd_->host;
  }
  out += ':';
  out += std::to_string(fwd_->port);
  out += "\r\n";
  for (const auto& [name, value] : fwd_->headers) {
    append_value(out, name);
    out += ": ";
    append_value(out, value);
    out += "\r\n";
  }
  up_chunked_ = sparser_->chunked();
  if (up_chunked_) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (auto len = sparser_->content_length()) {
    out += "Content-Length: ";
    out += std::to_string(*len);
    out += "\r\n";
  }
  out += "\r\n";
  error_code ec;
  auto n = pull_buffered(*sparser_, buffer_, up_buf_.get(),
                         relay_buffer_size, ec);
  if (ec)
    return on_request_body(ec, 0);
  write_upstream(up_head_, n);
}

void session::write_upstream(std::string_view head, size_t n) {
  auto last = sparser_->is_done();
  auto bufs = frame_piece(head, up_size_line_, up_buf_.get(), n,
                          up_chunked_, last);
  upstream_->expires_after(client_idle_timeout);
  asio::async_write(*upstream_, bufs,
                    beast::bind_front_handler(&session::on_upstream_write,
                                              shared_from_this()));
}

void session::on_upstream_write(error_code ec, size_t written) {
  ops_metrics().proxy_bytes_up.inc(written);
  if (ec) {
    if (upstream_reused_ && !retried_ && bodyless_request())
      return retry_fresh();
    // The upstream may have answered early (e.g. a 413 or 401 before
    // reading the body): look for its response all the same. The rest of
    // the client's body stays unread, so that connection closes after.
    upstream_write_failed_ = true;
    return do_read_response_header();
  }
  if (sparser_->is_done())
    return do_read_response_header();
  do_read_request_body();
}

void session::do_read_request_body() {
  auto& body = sparser_->get().body();
  body.data = up_buf_.get();
  body.size = relay_buffer_size;
  stream_.expires_after(client_idle_timeout);
  bhttp::async_read_some(stream_, buffer_, *sparser_,
                         beast::bind_front_handler(&session::on_request_body,
                                                   shared_from_this()));
}

void session::on_request_body(error_code ec, size_t) {
  if (ec == bhttp::error::need_buffer)
    ec = {};
  if (ec) {
    // The client vanished or sent a broken body: the upstream got a
    // truncated request, so neither connection can be reused.
    OSB_DEBUG("http", fwd_->request_id, fwd_->sandbox_id,
              "proxy: client body failed: " << ec.message());
    close_upstream();
    fwd_.reset();
    return do_close();
  }
  auto n = relay_buffer_size - sparser_->get().body().size;
  if (n == 0 && !sparser_->is_done())
    return do_read_request_body();
  write_upstream({}, n);
}

void session::retry_fresh() {
  retried_ = true;
  do_connect();
}

void session::do_read_response_header() {
  rparser_.emplace();
  rparser_->body_limit(boost::none);
  rparser_->header_limit(header_limit);
  // A HEAD response announces a body it does not carry.
  if (head_request_)
    rparser_->skip(true);
  upstream_->expires_after(upstream_idle_timeout);
  bhttp::async_read_header(*upstream_, upstream_buffer_, *rparser_,
                           beast::bind_front_handler(
                             &session::on_response_header,
                             shared_from_this()));
}

void session::on_response_header(error_code ec, size_t) {
  if (ec) {
    if (upstream_reused_ && !retried_ && bodyless_request()
        && !upstream_write_failed_
        && (ec == bhttp::error::end_of_stream
            || ec == asio::error::connection_reset))
      return retry_fresh();
    if (ec == beast::error::timeout)
      return fail_forward(forward_error::other,
                          "timed out waiting for the response");
    return fail_forward(forward_error::other, ec.message());
  }
  // The response is re-framed towards the client: a length we cannot
  // know, or codings we would have to drop, make it unusable.
  if (auto v = base::check_response_framing(rparser_->get(),
                                            rparser_->get().version());
      !v) {
    upstream_write_failed_ = true; // never reuse this connection
    return fail_forward(forward_error::other,
                        "invalid response framing: "
                          + std::string{v.reason});
  }
  auto status = rparser_->get().result_int();
  if (status == 101) {
    if (fwd_->upgrade)
      return do_write_tunnel_head();
    return fail_forward(forward_error::other,
                        "unexpected 101 Switching Protocols");
  }
  // Interim responses (100, 103) are not relayed; the final one follows.
  if (status < 200)
    return do_read_response_header();
  do_write_response_head();
}

void session::do_write_response_head() {
  auto& msg = rparser_->get();
  auto status = msg.result_int();
  auto connection = msg[bhttp::field::connection];
  auto& out = head_;
  out.clear();
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  auto reason = msg.reason();
  if (reason.empty())
    reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
  append_value(out, reason);
  out += "\r\n";
  bool has_date = false;
  for (const auto& field : msg) {
    auto name = field.name_string();
    if (net::drop_response_header(name, connection))
      continue;
    bool replaced = false;
    for (const auto& extra : fwd_->response_headers)
      replaced = replaced || iequals(extra.first, name);
    if (replaced)
      continue;
    has_date = has_date || iequals(name, "date");
    append_value(out, name);
    out += ": ";
    append_value(out, field.value());
    out += "\r\n";
  }
  for (const auto& [name, value] : fwd_->response_headers) {
    append_value(out, name);
    out += ": ";
    append_value(out, value);
    out += "\r\n";
  }
  if (!has_date) {
    out += "Date: ";
    out += http_date();
    out += "\r\n";
  }
  close_after_ = !keep_alive_ || !sparser_->is_done()
                 || upstream_write_failed_;
  down_chunked_ = false;
  if (head_request_) {
    // Same header fields as a GET, without the body.
    auto len = msg[bhttp::field::content_length];
    if (!len.empty()) {
      out += "Content-Length: ";
      append_value(out, len);
      out += "\r\n";
    }
  } else if (bodyless_status(status)) {
    // no body, no framing
  } else if (auto len = rparser_->content_length()) {
    out += "Content-Length: ";
    out += std::to_string(*len);
    out += "\r\n";
  } else if (version_ >= 11) {
    // Chunked or read-until-close upstream: chunked towards the client
    // keeps its connection alive and flushes every piece as it arrives.
    out += "Transfer-Encoding: chunked\r\n";
    down_chunked_ = true;
  } else {
    close_after_ = true; // an HTTP/1.0 client reads until close
  }
  if (close_after_)
    out += "Connection: close\r\n";
  else if (version_ < 11)
    out += "Connection: keep-alive\r\n";
  out += "\r\n";
  error_code ec;
  auto n = pull_buffered(*rparser_, upstream_buffer_, down_buf_.get(),
                         relay_buffer_size, ec);
  if (ec)
    return fail_forward(forward_error::other, ec.message());
  response_started_ = true;
  write_client(head_, n);
}

void session::write_client(std::string_view head, size_t n) {
  auto bufs = frame_piece(head, down_size_line_, down_buf_.get(), n,
                          down_chunked_, rparser_->is_done());
  stream_.expires_after(client_idle_timeout);
  asio::async_write(stream_, bufs,
                    beast::bind_front_handler(&session::on_client_write,
                                              shared_from_this()));
}

void session::on_client_write(error_code ec, size_t written) {
  ops_metrics().proxy_bytes_down.inc(written);
  if (ec) {
    OSB_DEBUG("http", fwd_->request_id, fwd_->sandbox_id,
              "proxy: client went away: " << ec.message());
    close_upstream();
    fwd_.reset();
    return do_close();
  }
  if (rparser_->is_done())
    return finish_forward();
  // Bytes that came with the previous read need no socket call.
  error_code pec;
  auto n = pull_buffered(*rparser_, upstream_buffer_, down_buf_.get(),
                         relay_buffer_size, pec);
  if (pec)
    return on_response_body(pec, 0);
  if (n > 0 || rparser_->is_done())
    return write_client({}, n);
  do_read_response_body();
}

void session::do_read_response_body() {
  auto& body = rparser_->get().body();
  body.data = down_buf_.get();
  body.size = relay_buffer_size;
  upstream_->expires_after(upstream_idle_timeout);
  bhttp::async_read_some(*upstream_, upstream_buffer_, *rparser_,
                         beast::bind_front_handler(
                           &session::on_response_body, shared_from_this()));
}

void session::on_response_body(error_code ec, size_t) {
  if (ec == bhttp::error::need_buffer)
    ec = {};
  if (ec == asio::error::operation_aborted) {
    // The server stops.
    close_upstream();
    fwd_.reset();
    return do_close();
  }
  if (ec) {
    // The head is out: all we can do is cut the stream, which the client
    // sees as a truncated body.
    OSB_WARN("http", fwd_->request_id, fwd_->sandbox_id,
             "proxy: upstream " << fwd_->host << ':' << fwd_->port
                                << " failed mid-response: "
                                << (ec == beast::error::timeout
                                      ? std::string{"idle timeout"}
                                      : ec.message()));
    close_upstream();
    fwd_.reset();
    return do_close();
  }
  auto n = relay_buffer_size - rparser_->get().body().size;
  if (n == 0 && !rparser_->is_done())
    return do_read_response_body();
  write_client({}, n);
}

void session::finish_forward() {
  bool reuse = rparser_->keep_alive() && !rparser_->need_eof()
               && !upstream_write_failed_ && sparser_->is_done();
  rparser_.reset();
  fwd_.reset();
  if (reuse)
    upstream_used_at_ = std::chrono::steady_clock::now();
  else
    close_upstream();
  if (close_after_)
    return do_linger();
  served_ = true;
  do_read();
}

void session::fail_forward(forward_error kind, const std::string& detail) {
  close_upstream();
  if (!fwd_ || response_started_)
    return do_close();
  auto fwd = std::move(fwd_);
  auto res = error_response(*fwd, kind, detail);
  awaiting_ = true;
  send(std::move(res));
}

void session::close_upstream() {
  if (!upstream_)
    return;
  error_code ec;
  upstream_->socket().shutdown(tcp::socket::shutdown_both, ec);
  upstream_->close();
  upstream_.reset();
  upstream_buffer_.clear();
  upstream_port_ = 0;
}

} // namespace osb::http::detail
