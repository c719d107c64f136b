#include "net/egress/http_server.hpp"

#include "base/http_framing.hpp"
#include "net/egress/log.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace osb::egress {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr size_t body_limit = 1 << 20;
/// Between requests: how long a kept-alive connection may stay silent.
constexpr auto idle_timeout = std::chrono::seconds{30};
/// A request (header and body) must arrive within this time of the
/// connection's start, or of its first byte after a keep-alive pause.
constexpr auto request_timeout = std::chrono::seconds{5};
constexpr size_t max_connections = 128;

} // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io, policy_api& api)
    : io(io), api(api), acceptor(io) {
  }

  void accept();

  asio::io_context& io;
  policy_api& api;
  tcp::acceptor acceptor;
  size_t connections = 0;
};

namespace {

class session : public std::enable_shared_from_this<session> {
public:
  session(std::shared_ptr<http_server::impl> server, tcp::socket socket)
    : server_(std::move(server)),
      socket_(std::move(socket)),
      timer_(server_->io) {
    ++server_->connections;
  }

  ~session() {
    --server_->connections;
  }

  void start() {
    read();
  }

private:
  /// Closes the socket when the timer fires (pending operations abort).
  void arm_timer(std::chrono::seconds after) {
    timer_.expires_after(after);
    timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) {
        error_code ignored;
        self->socket_.close(ignored);
      }
    });
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(body_limit);
    if (served_ && buffer_.size() == 0) {
      // Keep-alive: the idle timeout until the next request's first byte.
      arm_timer(idle_timeout);
      socket_.async_wait(tcp::socket::wait_read,
                         [self = shared_from_this()](error_code ec) {
                           if (ec)
                             return self->on_read(ec);
                           self->read_header();
                         });
      return;
    }
    read_header();
  }

  void read_header() {
    arm_timer(request_timeout);
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec)
                                return self->on_read(ec);
                              self->on_header();
                            });
  }

  // curl sends "Expect: 100-continue" for bodies over 1 KiB and would wait
  // a second for the interim response.
  void on_header() {
    auto& req = parser_->get();
    // RFC 9112 §6.3: a body whose length is in doubt ends the connection.
    if (auto v = boost_framing(req); !v) {
      EGRESS_WARN("request rejected: " << v.reason);
      error_code ignored;
      timer_.cancel(ignored);
      respond(text_error(v.status, std::string{v.reason}), false);
      return;
    }
    auto expect = req[http::field::expect];
    if (expect.size() == 12 && boost::beast::iequals(expect, "100-continue")
        && !parser_->is_done()) {
      static constexpr char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(socket_, asio::buffer(interim, sizeof(interim) - 1),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec)
                            return self->on_read(ec);
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(error_code ec) {
    error_code ignored;
    timer_.cancel(ignored);
    if (ec == http::error::body_limit) {
      respond(text_error(400, "failed to read body: http: request body too "
                              "large"),
              false);
      return;
    }
    // Malformed requests (Beast's parser errors) get a 400, like Go's
    // net/http; socket errors and timeouts just close.
    if (ec.category() == http::make_error_code(http::error::bad_method)
                           .category()
        && ec != http::error::end_of_stream
        && ec != http::error::partial_message) {
      respond(text_error(400, "Bad Request"), false);
      return;
    }
    if (ec) {
      socket_.close(ignored);
      return;
    }
    auto& req = parser_->get();
    api_request r;
    r.method = std::string{req.method_string()};
    r.target = std::string{req.target()};
    if (auto it = req.find(auth_header); it != req.end())
      r.auth = std::string{it->value()};
    r.body = std::move(req.body());
    api_response res;
    try {
      res = server_->api.handle(r);
    } catch (const std::exception& e) {
      EGRESS_ERROR("request failed: " << e.what());
      res = text_error(500, "internal error");
    }
    respond(std::move(res), req.keep_alive());
  }

  void respond(api_response res, bool keep_alive) {
    auto msg = std::make_shared<http::response<http::string_body>>();
    msg->result(static_cast<unsigned>(res.status));
    msg->version(11);
    msg->set(http::field::content_type, res.content_type);
    if (res.content_type.rfind("text/plain", 0) == 0 && res.status >= 400)
      msg->set("X-Content-Type-Options", "nosniff");
    if (!res.allow.empty())
      msg->set(http::field::allow, res.allow);
    msg->body() = std::move(res.body);
    msg->keep_alive(keep_alive);
    msg->prepare_payload();
    http::async_write(socket_, *msg,
                      [self = shared_from_this(), msg](error_code ec, size_t) {
                        if (ec || !msg->keep_alive()) {
                          error_code ignored;
                          self->socket_.shutdown(tcp::socket::shutdown_send,
                                                 ignored);
                          if (!ec)
                            return self->linger();
                          self->socket_.close(ignored);
                          return;
                        }
                        self->served_ = true;
                        self->read();
                      });
  }

  template <class Request>
  static base::framing_verdict boost_framing(const Request& req) {
    return base::check_request_framing(req, req.version());
  }

  /// After a response with `Connection: close`: discards what the client
  /// still sends (a rejected body) until it closes or a moment passes, so
  /// that closing with unread data does not reset the connection before
  /// the client has read the response.
  void linger() {
    arm_timer(std::chrono::seconds{2});
    linger_more();
  }

  void linger_more() {
    socket_.async_read_some(
      asio::buffer(sink_),
      [self = shared_from_this()](error_code ec, size_t) {
        if (ec) {
          error_code ignored;
          self->timer_.cancel(ignored);
          self->socket_.close(ignored);
          return;
        }
        self->linger_more();
      });
  }

  std::shared_ptr<http_server::impl> server_;
  bool served_ = false;
  char sink_[4096];
  tcp::socket socket_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_{8192};
  std::optional<http::request_parser<http::string_body>> parser_;
};

} // namespace

void http_server::impl::accept() {
  acceptor.async_accept([self = shared_from_this()](error_code ec,
                                                    tcp::socket s) {
    if (ec == asio::error::operation_aborted)
      return;
    if (!ec) {
      if (self->connections >= max_connections) {
        error_code ignored;
        s.close(ignored);
      } else {
        std::make_shared<session>(self, std::move(s))->start();
      }
    }
    self->accept();
  });
}

http_server::http_server(asio::io_context& io, policy_api& api)
  : impl_(std::make_shared<impl>(io, api)) {
}

http_server::~http_server() {
  error_code ignored;
  impl_->acceptor.close(ignored);
}

bool http_server::start(const std::string& host, uint16_t port,
                        std::string* error) {
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    tcp::endpoint ep{addr, port};
    impl_->acceptor.open(ep.protocol(), ec);
    if (!ec)
      impl_->acceptor.set_option(tcp::acceptor::reuse_address{true}, ec);
    if (!ec)
      impl_->acceptor.bind(ep, ec);
    if (!ec)
      impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    if (error)
      *error = "cannot listen on " + host + ":" + std::to_string(port) + ": "
               + ec.message();
    return false;
  }
  impl_->accept();
  return true;
}

} // namespace osb::egress
