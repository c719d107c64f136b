#pragma once

// How a handler of the synchronous server (base/http_server.hpp) reads a
// request body and writes its response: socket-free interfaces, so that
// request handling is testable with fakes and free of Beast types.

#include "base/http_request.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace osb::base {

class raw_connection;

/// The request body, read incrementally.
class body_reader {
public:
  virtual ~body_reader() = default;

  /// Reads up to `n` bytes; returns 0 at the end of the body, -1 on error.
  virtual long read(char* buf, size_t n) = 0;

  /// Whether the whole body has been read (at once for a request without
  /// one). A fake without a connection may leave it false.
  virtual bool done() const {
    return false;
  }
};

/// Writes one response: either complete (`send`) or streamed (`begin`,
/// `write`..., `finish`). All calls return false once the client is gone.
class response_writer {
public:
  virtual ~response_writer() = default;

  /// Sends a complete response with Content-Length (also for an empty
  /// body). An empty `content_type` omits the header.
  virtual bool send(int status, std::string_view content_type,
                    std::string_view body, const header_list& extra = {})
    = 0;

  /// Starts a streamed response: with Content-Length when `length` is
  /// set, chunked otherwise.
  virtual bool begin(int status, std::string_view content_type,
                     std::optional<uint64_t> length,
                     const header_list& extra = {})
    = 0;

  /// Writes body bytes (one chunk when chunked) and flushes them.
  virtual bool write(std::string_view data) = 0;

  /// Ends a streamed response.
  virtual bool finish() = 0;

  /// Whether the status line went out.
  virtual bool started() const = 0;

  /// The status sent (0 before).
  virtual int status() const = 0;

  /// Closes the connection after this response (`Connection: close`), e.g.
  /// rather than reading an unwanted body to its end. Call it before the
  /// response starts.
  virtual void close_connection() {
    // nop
  }

  /// The connection below this response, for a relay that speaks HTTP to
  /// another server itself (execd's /proxy; see base/http_socket.hpp).
  /// Null where there is no connection (fakes).
  virtual raw_connection* raw() {
    return nullptr;
  }
};

/// Handles one request. Runs on the connection's own thread: it may block
/// (a slow client then throttles only its own handler).
using http_handler
  = std::function<void(const http_request&, body_reader&, response_writer&)>;

} // namespace osb::base
