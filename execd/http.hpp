#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace osb::execd {

/// Header fields as (name, value) pairs.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// An HTTP request head, independent of Beast (so that the routing can be
/// tested without sockets).
struct http_request {
  std::string method;
  /// Raw target: path + "?" + query.
  std::string target;
  /// Target before '?', not decoded.
  std::string path;
  /// Target after '?', not decoded.
  std::string query;
  /// Header fields, names lower-cased.
  header_list headers;
  std::string remote_addr;

  /// The first header named `lower_name`, or "".
  std::string header(std::string_view lower_name) const;

  /// All decoded values of query parameter `key`.
  std::vector<std::string> query_all(std::string_view key) const;

  /// The first decoded value of query parameter `key`.
  std::optional<std::string> query_get(std::string_view key) const;

  /// Sets target, path and query from a raw target.
  void set_target(std::string t);
};

/// The request body, read incrementally.
class body_reader {
public:
  virtual ~body_reader() = default;

  /// Reads up to `n` bytes; returns 0 at the end of the body, -1 on error.
  virtual long read(char* buf, size_t n) = 0;
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
};

/// Handles one request.
using http_handler
  = std::function<void(const http_request&, body_reader&, response_writer&)>;

} // namespace osb::execd
