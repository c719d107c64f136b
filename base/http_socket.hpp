#pragma once

// The blocking socket of the synchronous server (base/http_server.hpp) and
// the connection below a request, for a relay that speaks HTTP to another
// server itself (execd's /proxy: Beast parsers on both sides, a raw byte
// relay after a 101). Beast-level: include it only from translation units
// that use Beast anyway.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <optional>

namespace osb::base {

/// A blocking socket with a poll()-based read timeout, usable as a Beast
/// SyncReadStream/SyncWriteStream. (Asio's own synchronous reads ignore
/// SO_RCVTIMEO.) Optionally a read also fails once another descriptor's
/// peer hung up, so that a relayed stream stops when its client left.
class timed_socket {
public:
  using error_code = boost::system::error_code;

  explicit timed_socket(boost::asio::ip::tcp::socket& s) : s_(s) {
    // nop
  }

  /// The socket below.
  boost::asio::ip::tcp::socket& socket() {
    return s_;
  }

  int fd() {
    return s_.native_handle();
  }

  /// Read timeout; -1 = none.
  int timeout_ms = -1;

  /// When >= 0: fail reads once this descriptor's peer closed.
  int watch_fd = -1;

  /// When set: reads fail with timed_out once it has passed (a bound on a
  /// whole header, however slowly its bytes trickle in).
  std::optional<std::chrono::steady_clock::time_point> deadline;

  /// Waits until a byte (or EOF) can be read, within `timeout_ms` and the
  /// deadline.
  bool wait_readable(error_code& ec);

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& b, error_code& ec) {
    if (!wait_readable(ec))
      return 0;
    return s_.read_some(b, ec);
  }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& b) {
    error_code ec;
    auto n = read_some(b, ec);
    if (ec)
      throw boost::system::system_error{ec};
    return n;
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& b, error_code& ec) {
    return s_.write_some(b, ec);
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& b) {
    return s_.write_some(b);
  }

private:
  boost::asio::ip::tcp::socket& s_;
};

/// The request parser of the synchronous server: the body is read piece by
/// piece into the reader's buffers (no copy of a whole body).
using request_parser = boost::beast::http::request_parser<
  boost::beast::http::buffer_body>;

/// The connection below a request whose body is still unread: what a relay
/// needs to forward the request and write the response itself.
class raw_connection {
public:
  virtual ~raw_connection() = default;

  /// The client's socket (its timeouts are the server's body timeouts).
  virtual timed_socket& client() = 0;

  /// Bytes read from the client past the parsed part of the request.
  virtual boost::beast::flat_buffer& buffer() = 0;

  /// The request, header parsed, body not (or not entirely) read.
  virtual request_parser& parser() = 0;

  /// Records that the relay answered the request itself: `status` for the
  /// log, and whether the connection may serve another request.
  virtual void relayed(int status, bool keep_alive) = 0;
};

} // namespace osb::base
