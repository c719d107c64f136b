// execd's HTTP front: the shared synchronous server, the access token and
// the /proxy dispatch (in-process to our own port, otherwise the relay).

#include "execd/server.hpp"

#include "base/http_server.hpp"
#include "base/secure_compare.hpp"
#include "execd/proxy.hpp"
#include "execd/util.hpp"

#include <atomic>

namespace osb::execd {

namespace {

bool is_proxy_path(std::string_view path) {
  return path == "/proxy" || path.rfind("/proxy/", 0) == 0;
}

/// What stands in front of the API handler.
class front {
public:
  front(std::string token, base::http_handler api)
    : token_(std::move(token)), api_(std::move(api)) {
    // nop
  }

  /// The server's own port (0 until bound: /proxy to it then goes the
  /// long way, over TCP).
  std::atomic<uint16_t> own_port{0};

  void operator()(const http_request& req, body_reader& body,
                  response_writer& w) {
    // The health ping stays open (readiness probes carry no credential);
    // everything else needs the sandbox's token.
    bool open_ping = req.path == "/ping" && req.method == "GET";
    if (!token_.empty() && !open_ping
        && !constant_time_equal(req.header("x-execd-access-token"), token_)) {
      // Not worth reading an unwanted body to its end.
      if (!body.done())
        w.close_connection();
      w.send(401, "application/json",
             R"({"error":"Unauthorized: invalid or missing header X-EXECD-ACCESS-TOKEN"})");
      return;
    }
    if (!is_proxy_path(req.path))
      return api_(req, body, w);
    // /proxy/{port}/{rest}: to our own port it loops back in-process.
    auto inner = req;
    while (is_proxy_path(inner.path)) {
      auto rest = std::string_view{inner.path}.substr(
        std::min<size_t>(inner.path.size(), 7));
      auto slash = rest.find('/');
      auto port = parse_u64(rest.substr(0, slash));
      if (!port || *port == 0 || *port > 65535) {
        if (!body.done())
          w.close_connection();
        w.send(400, "text/plain; charset=utf-8",
               "invalid or missing port in proxy path");
        return;
      }
      std::string target = slash == std::string_view::npos
                             ? std::string{"/"}
                             : std::string{rest.substr(slash)};
      if (!inner.query.empty())
        target += "?" + inner.query;
      if (*port != own_port) {
        relay(inner, static_cast<uint16_t>(*port), target, w);
        return;
      }
      inner.set_target(std::move(target));
    }
    api_(inner, body, w);
  }

private:
  std::string token_;
  base::http_handler api_;
};

/// The server's own answers as execd's API writes them: 500s in the JSON
/// error envelope, malformed requests in plain text.
void error_response(response_writer& w, int status, std::string_view reason) {
  if (status >= 500 && status != 501)
    return send_error(w, status, "UNKNOWN", reason);
  base::plain_error_response(w, status, reason);
}

class server_impl final : public http_server {
public:
  server_impl(std::shared_ptr<front> f, std::unique_ptr<base::sync_server> s)
    : front_(std::move(f)), srv_(std::move(s)) {
    // nop
  }

  uint16_t port() const override {
    return srv_->port();
  }

  void stop() override {
    srv_->stop();
  }

private:
  std::shared_ptr<front> front_;
  std::unique_ptr<base::sync_server> srv_;
};

} // namespace

std::unique_ptr<http_server> http_server::start(server_options opts,
                                                base::http_handler handler,
                                                std::string* err) {
  base::sync_server_options so;
  so.host = opts.host;
  so.port = opts.port;
  so.idle_timeout = opts.idle_timeout;
  so.header_timeout = opts.header_timeout;
  so.max_connections = opts.max_connections;
  so.log_component = "execd";
  so.error_response = error_response;
  auto f = std::make_shared<front>(opts.access_token, std::move(handler));
  auto srv = base::sync_server::start(
    std::move(so),
    [f](const http_request& req, body_reader& body, response_writer& w) {
      (*f)(req, body, w);
    },
    err);
  if (!srv)
    return nullptr;
  f->own_port = srv->port();
  return std::make_unique<server_impl>(std::move(f), std::move(srv));
}

} // namespace osb::execd
