#pragma once

#include "base/http_server.hpp"
#include "net/egress/api.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace osb::egress {

/// The policy API over HTTP/1.1: the shared synchronous server
/// (base/http_server.hpp), one thread per connection. Keep-alive, 1 MiB
/// body limit, a whole request within 5 s of its first byte, idle
/// connections closed after 30 s, at most 128 connections.
class http_server {
public:
  /// Every request runs `api` under `state_mutex`, the lock of everything
  /// else that touches the sidecar's state (the DNS proxy and the timers on
  /// the io_context's thread): mutations run one at a time, as the API
  /// expects.
  http_server(policy_api& api, std::mutex& state_mutex);

  ~http_server();

  /// Binds `host:port` (0 = any free port) and starts accepting; false with
  /// `error` on failure.
  bool start(const std::string& host, uint16_t port, std::string* error);

  /// The bound port (0 before start).
  uint16_t port() const;

  /// Stops accepting and closes all connections.
  void stop();

private:
  void handle(const base::http_request& req, base::body_reader& body,
              base::response_writer& w);

  policy_api& api_;
  std::mutex& state_mutex_;
  std::unique_ptr<base::sync_server> srv_;
};

} // namespace osb::egress
