#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/expected.hpp"

namespace osb::http {

/// A complete HTTP request, independent of Beast.
struct request {
  std::string method;   ///< "GET", "POST", ...
  std::string target;   ///< raw target: path + "?" + query
  std::string path;     ///< target before '?', not decoded
  std::string query;    ///< target after '?', not decoded
  /// Header fields with lower-cased names, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_addr;
  /// The body is still in the connection: the application must answer with
  /// a `forward_spec` (which streams it upstream) or with a response (after
  /// which the connection closes unless the body was empty).
  bool streamed = false;

  /// Returns the first header named `lower_name` or "".
  const std::string& header(const std::string& lower_name) const;
};

struct response;

/// Why forwarding failed before a response reached the client.
enum class forward_error {
  connect, ///< the upstream refused or did not answer the connect
  other,   ///< anything later: reset, timeout, malformed response
};

/// Instructions to forward a streamed request to an upstream HTTP/1.1 server
/// instead of answering it (the server proxy). The server streams the
/// request body up and the response body down chunk by chunk (no body is
/// ever held whole), keeps the client connection alive afterwards and, for a
/// WebSocket handshake that the upstream accepts with 101, relays raw bytes
/// both ways until either side closes.
struct forward_spec {
  /// Numeric IPv4/IPv6 address; never a name from the request.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  /// `host` is an address of this machine: the upstream socket is bound to
  /// it before connecting, so that an address that stopped being local
  /// (DHCP, VPN) fails instead of leading to another machine.
  bool bind_source = false;
  /// Origin-form target sent upstream (path and query).
  std::string target;
  /// Request header fields sent upstream, already filtered. The server adds
  /// `Host` and the body framing (`Content-Length` or chunked).
  std::vector<std::pair<std::string, std::string>> headers;
  /// A WebSocket handshake: on 101 the connection becomes a byte tunnel.
  bool upgrade = false;
  /// Added to the response (replacing upstream fields of the same name,
  /// case-insensitive), e.g. `X-Request-ID`, CORS.
  std::vector<std::pair<std::string, std::string>> response_headers;
  /// For log lines of the relay.
  std::string request_id;
  std::string sandbox_id;
  /// Builds the answer for a failure before the response started (and logs
  /// it); the detail is the socket or parser error. Called on the
  /// connection's I/O thread, at most once.
  std::function<response(forward_error, const std::string& detail)> on_error;
};

/// A complete HTTP response.
struct response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Content-Type; empty for bodies that are empty.
  std::string content_type = "application/json";
  /// When set (for a streamed request), the server forwards the request
  /// instead of sending this response; the other members are ignored.
  std::shared_ptr<forward_spec> forward;
};

/// Completes a request. Callable once, from any thread; the write happens on
/// the connection's I/O thread.
using responder = std::function<void(response)>;

/// The application: called on an I/O thread; must not block.
using handler = std::function<void(request&&, responder)>;

struct server_options {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;       ///< 0 = pick a free port
  int threads = 2;            ///< I/O threads
  int64_t keep_alive_s = 30;  ///< idle keep-alive timeout
  /// A request's header must arrive within this many seconds of the
  /// connection's start, or of its first byte after a keep-alive pause; a
  /// buffered body then gets max(this, keep_alive_s) more.
  int64_t header_timeout_s = 5;
  size_t body_limit = 16 * 1024 * 1024;
  /// Open connections, 0 = unlimited. At the limit a new connection evicts
  /// the connection that has waited longest without sending a complete
  /// request; only when every connection is busy (a request with the
  /// application, a streamed proxy body, a WebSocket tunnel) does it get a
  /// 503.
  int64_t limit_concurrency = 1024;
  int backlog = 2048;
  /// Whether a request, by its raw path, is streamed: the application sees
  /// it right after the header (`request::streamed`), before its body is
  /// read, so that it can forward it without any body limit. Default: the
  /// server-proxy paths (`net::is_proxy_path`); empty = none.
  std::function<bool(std::string_view raw_path)> streamed;
  /// Set `streamed` to the proxy paths (the default).
  server_options();
};

/// What the server's connections are doing.
struct server_stats {
  int64_t open = 0;    ///< open connections
  int64_t waiting = 0; ///< of those, waiting for a request (evictable)
  int64_t evicted = 0; ///< connections closed to make room, since the start
};

/// An HTTP/1.1 server (Boost.Beast) with keep-alive and pipelining.
class server {
public:
  virtual ~server() = default;

  /// The bound port.
  virtual uint16_t port() const = 0;

  /// The connection counts now (for tests and diagnostics; walks the
  /// connections under a lock, so not for every request).
  virtual server_stats stats() const = 0;

  /// Stops accepting new connections; open ones keep being served (the
  /// first step of a graceful shutdown, before stop()).
  virtual void stop_accepting() = 0;

  /// Stops accepting, closes connections and joins the I/O threads.
  virtual void stop() = 0;

  /// Binds and starts serving on `opts.threads` threads.
  static expected<std::unique_ptr<server>> start(server_options opts,
                                                 handler h);
};

} // namespace osb::http
