#pragma once

#include "base/http_io.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace osb::execd {

struct server_options {
  std::string host = "0.0.0.0";
  /// 0 = pick a free port.
  uint16_t port = 44772;
  /// When set, every request (including /proxy, but not `GET /ping`) must
  /// carry it in `X-EXECD-ACCESS-TOKEN`.
  std::string access_token;
  /// How long an idle keep-alive connection stays open.
  std::chrono::seconds idle_timeout{600};
  /// A request's header must arrive within this time of the connection's
  /// start, or of its first byte after a keep-alive pause.
  std::chrono::seconds header_timeout{5};
  size_t max_connections = 1024;
};

/// The execd HTTP server: the shared synchronous server
/// (base/http_server.hpp, one thread per connection) in front of the API.
///
/// In front of `handler` it checks the access token and serves
/// `/proxy/{port}/{rest}`: to the server's own port it is dispatched
/// in-process (the SDKs reach execd through `/proxy/44772/...` in bridge
/// mode), otherwise it is relayed to 127.0.0.1:{port} (execd/proxy.hpp).
class http_server {
public:
  virtual ~http_server() = default;

  /// The bound port.
  virtual uint16_t port() const = 0;

  /// Stops accepting, closes all connections and waits (bounded) for their
  /// threads.
  virtual void stop() = 0;

  /// Binds and starts accepting on a background thread. Returns null and
  /// sets `*err` if binding fails.
  static std::unique_ptr<http_server> start(server_options opts,
                                            base::http_handler handler,
                                            std::string* err);
};

} // namespace osb::execd
