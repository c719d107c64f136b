// The server proxy's WebSocket tunnel: after the upstream accepted a
// handshake with 101, raw bytes flow both ways until either side closes
// or the tunnel stays idle too long. See session.hpp.

#include "http/session.hpp"

#include "base/log.hpp"
#include "core/server_metrics.hpp"

#include <boost/asio/write.hpp>

namespace osb::http::detail {

void session::do_write_tunnel_head() {
  auto& msg = rparser_->get();
  auto& out = head_;
  out.clear();
  out += "HTTP/1.1 101 Switching Protocols\r\n";
  for (const auto& field : msg) {
    append_value(out, field.name_string());
    out += ": ";
    append_value(out, field.value());
    out += "\r\n";
  }
  out += "\r\n";
  stream_.expires_after(client_idle_timeout);
  asio::async_write(stream_, asio::buffer(head_),
                    beast::bind_front_handler(&session::on_tunnel_head,
                                              shared_from_this()));
}

void session::on_tunnel_head(error_code ec, size_t) {
  if (ec) {
    close_upstream();
    return do_close();
  }
  OSB_DEBUG("http", fwd_->request_id, fwd_->sandbox_id,
            "proxy: websocket tunnel to " << fwd_->host << ':'
                                          << fwd_->port << " open");
  // From here on raw bytes flow both ways on the sockets themselves (one
  // read and one write may be pending on each), with one idle timer.
  stream_.expires_never();
  upstream_->expires_never();
  tunnel_open_ = 2;
  last_activity_ = std::chrono::steady_clock::now();
  arm_tunnel_timer(tunnel_idle_timeout);
  // Bytes that arrived behind the handshakes go first.
  tunnel_flush(true);
  tunnel_flush(false);
}

socket_type& session::tunnel_source(bool up) {
  return up ? stream_.socket() : upstream_->socket();
}

socket_type& session::tunnel_sink(bool up) {
  return up ? upstream_->socket() : stream_.socket();
}

void session::tunnel_flush(bool up) {
  auto& pending = up ? buffer_ : upstream_buffer_;
  if (pending.size() == 0)
    return do_tunnel_read(up);
  asio::async_write(tunnel_sink(up), pending.data(),
                    [self = shared_from_this(), up](error_code ec, size_t) {
                      auto& pending
                        = up ? self->buffer_ : self->upstream_buffer_;
                      pending.clear();
                      self->on_tunnel_write(up, ec, 0);
                    });
}

void session::do_tunnel_read(bool up) {
  if (tunnel_closed_)
    return;
  auto* buf = up ? up_buf_.get() : down_buf_.get();
  tunnel_source(up).async_read_some(
    asio::buffer(buf, relay_buffer_size),
    beast::bind_front_handler(&session::on_tunnel_read, shared_from_this(),
                              up));
}

void session::on_tunnel_read(bool up, error_code ec, size_t n) {
  if (tunnel_closed_)
    return;
  if (ec == asio::error::eof) {
    // Half-close: pass the EOF on, keep relaying the other way.
    error_code sec;
    tunnel_sink(up).shutdown(tcp::socket::shutdown_send, sec);
    if (--tunnel_open_ == 0)
      close_tunnel();
    return;
  }
  if (ec)
    return close_tunnel();
  last_activity_ = std::chrono::steady_clock::now();
  auto* buf = up ? up_buf_.get() : down_buf_.get();
  asio::async_write(tunnel_sink(up), asio::buffer(buf, n),
                    beast::bind_front_handler(&session::on_tunnel_write,
                                              shared_from_this(), up));
}

void session::on_tunnel_write(bool up, error_code ec, size_t n) {
  (up ? ops_metrics().proxy_bytes_up : ops_metrics().proxy_bytes_down)
    .inc(n);
  if (tunnel_closed_)
    return;
  if (ec)
    return close_tunnel();
  do_tunnel_read(up);
}

void session::arm_tunnel_timer(std::chrono::steady_clock::duration after) {
  tunnel_timer_.expires_after(after);
  tunnel_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->tunnel_closed_)
      return;
    auto idle = std::chrono::steady_clock::now() - self->last_activity_;
    if (idle >= tunnel_idle_timeout) {
      OSB_DEBUG("http", "", "", "proxy: websocket tunnel idle, closing");
      return self->close_tunnel();
    }
    self->arm_tunnel_timer(tunnel_idle_timeout - idle);
  });
}

void session::close_tunnel() {
  if (tunnel_closed_)
    return;
  tunnel_closed_ = true;
  tunnel_timer_.cancel();
  // Close, but keep the socket objects: the other direction's operations
  // may still be queued and complete with operation_aborted.
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  if (upstream_) {
    upstream_->socket().shutdown(tcp::socket::shutdown_both, ec);
    upstream_->socket().close(ec);
  }
}

} // namespace osb::http::detail
