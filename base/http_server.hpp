#pragma once

// The synchronous HTTP/1.1 server of execd and the egress sidecar. (The
// lifecycle server keeps its asynchronous one in http/: it proxies at tens
// of thousands of requests per second.)

#include "base/http_io.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace osb::base {

/// Writes one of the server's own answers to `w` (whose connection closes
/// afterwards for 400 and 501):
/// - 400 with an empty `reason`: a malformed request (Beast's parser);
/// - 400 or 501 with the `reason` of check_request_framing();
/// - 500 with "internal error" (the handler threw before answering) or
///   "no response" (it returned without answering).
using error_responder = std::function<void(response_writer& w, int status,
                                           std::string_view reason)>;

/// The default error_responder: text/plain "Bad Request", "Not
/// Implemented" or "Internal Server Error".
void plain_error_response(response_writer& w, int status,
                          std::string_view reason);

struct sync_server_options {
  std::string host = "0.0.0.0";
  /// 0 = pick a free port.
  uint16_t port = 0;
  /// How long an idle keep-alive connection stays open.
  std::chrono::seconds idle_timeout{600};
  /// A request's header must arrive within this time of the connection's
  /// start, or of its first byte after a keep-alive pause; otherwise the
  /// connection closes without an answer.
  std::chrono::seconds header_timeout{5};
  /// Whether the header's deadline bounds the body as well (a whole request
  /// within `header_timeout`), instead of `body_timeout` per read.
  bool deadline_covers_body = false;
  /// How long a request body may stall between two reads.
  std::chrono::milliseconds body_timeout{300 * 1000};
  /// Upper bound for the request line plus header fields (larger: 400).
  uint32_t header_limit = 64 * 1024;
  /// Connections beyond this are closed at once.
  size_t max_connections = 1024;
  /// Component name of the server's log lines.
  std::string log_component = "http";
  /// One INFO line per request: `<method> <target> <status> <ms>ms`.
  bool log_requests = true;
  /// The server's own answers; default: plain_error_response.
  error_responder error_response;
};

/// An HTTP/1.1 server (Boost.Beast, synchronous): keep-alive, pipelining,
/// `Expect: 100-continue`, RFC 9112 framing checks (base/http_framing.hpp),
/// a header timeout against silent or trickling clients.
///
/// One thread per connection: execd and the egress sidecar see a handful of
/// connections, and blocking I/O makes backpressure trivial (execd reads a
/// command's pipe only when the previous event was written to the client)
/// as well as streaming relays. A slow client blocks only its own thread.
///
/// A request body the handler leaves unread (up to 4 MiB) is skipped so the
/// connection can serve the next request; a larger one closes it. A handler
/// that returns without answering after a failed body read (the client is
/// gone or too slow) closes the connection without an answer.
class sync_server {
public:
  virtual ~sync_server() = default;

  /// The bound port.
  virtual uint16_t port() const = 0;

  /// Stops accepting, closes all connections and waits (bounded, 10 s) for
  /// their threads.
  virtual void stop() = 0;

  /// Binds and starts accepting on a background thread. Returns null and
  /// sets `*err` if binding fails.
  static std::unique_ptr<sync_server>
  start(sync_server_options opts, http_handler handler, std::string* err);
};

} // namespace osb::base
