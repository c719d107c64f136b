#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
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

  /// Returns the first header named `lower_name` or "".
  const std::string& header(const std::string& lower_name) const;
};

/// A complete HTTP response.
struct response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Content-Type; empty for bodies that are empty.
  std::string content_type = "application/json";
};

/// Completes a request. Callable once, from any thread; the write happens on
/// the connection's strand.
using responder = std::function<void(response)>;

/// The application: called on an I/O thread; must not block.
using handler = std::function<void(request&&, responder)>;

struct server_options {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;       ///< 0 = pick a free port
  int threads = 2;            ///< I/O threads
  int64_t keep_alive_s = 30;  ///< idle keep-alive timeout
  size_t body_limit = 16 * 1024 * 1024;
  int64_t limit_concurrency = 1024; ///< open connections, 0 = unlimited
  int backlog = 2048;
};

/// An HTTP/1.1 server (Boost.Beast) with keep-alive and pipelining.
class server {
public:
  virtual ~server() = default;

  /// The bound port.
  virtual uint16_t port() const = 0;

  /// Stops accepting, closes connections and joins the I/O threads.
  virtual void stop() = 0;

  /// Binds and starts serving on `opts.threads` threads.
  static expected<std::unique_ptr<server>> start(server_options opts,
                                                 handler h);
};

} // namespace osb::http
