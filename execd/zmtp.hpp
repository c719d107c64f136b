#pragma once

// A ZeroMQ peer for talking to Jupyter kernels: ZMTP 3.0 (RFC 23) with the
// NULL mechanism over TCP, as the DEALER or SUB side. Kernels listen
// (ROUTER/PUB); execd connects. Written here instead of linking libzmq so
// that execd stays one small static binary; it only needs what a Jupyter
// client needs: one connection per socket, multipart messages, and
// subscriptions sent as ZMTP 3.0 messages (libzmq peers accept them).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

/// Incremental ZMTP 3.0 frame parser (socket-free, for tests as well).
class zmtp_parser {
public:
  /// Frames longer than this fail the connection.
  explicit zmtp_parser(uint64_t max_frame = 256ull * 1024 * 1024)
    : max_frame_(max_frame) {
    // nop
  }

  /// Outcome of next().
  enum class result { message, command, incomplete, error };

  /// Appends received bytes.
  void feed(std::string_view data);

  /// Takes one complete message (all its frames) or command (its body in
  /// `parts[0]`) from the buffer.
  result next(std::vector<std::string>& parts);

  /// Bytes held.
  size_t buffered() const {
    return buf_.size() - off_;
  }

private:
  std::string buf_;
  size_t off_ = 0;
  uint64_t max_frame_;
  std::vector<std::string> pending_;
};

/// Appends one frame (flags: more, command) to `out`.
void zmtp_append_frame(std::string& out, std::string_view body, bool more,
                       bool command = false);

/// The 64-byte ZMTP 3.0 greeting of a NULL-mechanism client.
std::string zmtp_greeting();

/// A READY command announcing `socket_type` (and no identity).
std::string zmtp_ready(std::string_view socket_type);

/// One connected ZMTP socket (blocking I/O, poll-based timeouts).
class zmtp_socket {
public:
  zmtp_socket() = default;
  ~zmtp_socket();

  zmtp_socket(const zmtp_socket&) = delete;
  zmtp_socket& operator=(const zmtp_socket&) = delete;

  /// Connects to 127.0.0.1:`port` and completes the handshake as
  /// `socket_type` ("DEALER", "SUB") within `timeout_ms`. On failure
  /// returns false with `*err` set; `refused` tells a closed port apart
  /// (the kernel is not listening yet).
  bool connect(uint16_t port, std::string_view socket_type, int timeout_ms,
               std::string* err, bool* refused = nullptr);

  /// The descriptor, for poll (-1 when closed).
  int fd() const {
    return fd_;
  }

  /// Sends a multipart message; false once the peer is gone.
  bool send(const std::vector<std::string_view>& parts);

  /// Subscribes a SUB socket to `prefix` ("" = everything).
  bool subscribe(std::string_view prefix);

  /// Outcome of recv().
  enum class status { ok, timeout, closed, error };

  /// Receives one message: from the buffer, else waits up to `timeout_ms`
  /// (-1 = forever, 0 = only what is buffered or readable now).
  status recv(std::vector<std::string>& parts, int timeout_ms);

  /// Takes a message that is already buffered, without reading the socket.
  bool pop_buffered(std::vector<std::string>& parts);

  /// Reads what the socket has (call when poll says it is readable);
  /// false on EOF or error.
  bool fill();

  /// Closes the connection.
  void close();

private:
  bool write_all(std::string_view data);
  bool handle_command(const std::string& body);

  int fd_ = -1;
  zmtp_parser parser_;
  bool failed_ = false;
};

} // namespace osb::execd
