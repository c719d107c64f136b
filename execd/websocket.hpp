#pragma once

// RFC 6455 WebSocket framing and a blocking server-side connection, for
// execd's terminals (`/pty/{id}/ws`). The codec serves both roles, so the
// tests speak it as clients too.

#include "base/http_io.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace osb::execd::ws {

enum opcode : uint8_t {
  op_continuation = 0x0,
  op_text = 0x1,
  op_binary = 0x2,
  op_close = 0x8,
  op_ping = 0x9,
  op_pong = 0xA,
};

/// Close codes used here.
constexpr uint16_t close_normal = 1000;
constexpr uint16_t close_going_away = 1001;
constexpr uint16_t close_protocol_error = 1002;
constexpr uint16_t close_too_big = 1009;
/// Another client took the session over (`?takeover=1`).
constexpr uint16_t close_taken_over = 4001;

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
std::string accept_key(std::string_view client_key);

/// Appends one frame with FIN set; `mask` (a client's frames) uses a fixed
/// masking key unless `key` is given.
void append_frame(std::string& out, uint8_t opcode, std::string_view payload,
                  bool mask = false, uint32_t key = 0x5a1b2c3d);

/// The payload of a close frame.
std::string close_payload(uint16_t code, std::string_view reason);

/// One decoded frame.
struct frame {
  uint8_t opcode = 0;
  bool fin = true;
  std::string payload;
};

/// Incremental frame parser.
class frame_parser {
public:
  /// `expect_masked`: frames from clients must be masked (RFC 6455 §5.1).
  frame_parser(bool expect_masked, uint64_t max_payload)
    : expect_masked_(expect_masked), max_payload_(max_payload) {
    // nop
  }

  enum class result { frame, incomplete, error, too_big };

  void feed(std::string_view data);

  result next(frame& out);

private:
  std::string buf_;
  size_t off_ = 0;
  bool expect_masked_;
  uint64_t max_payload_;
};

/// A server-side connection on a blocking socket: one thread reads
/// (read_message), any thread writes (serialized). Writes time out after
/// 10 s, so a stalled client cannot block a writer for long.
class connection {
public:
  /// Takes ownership of nothing: `fd` stays the HTTP server's; `leftover`
  /// are bytes read past the handshake.
  connection(int fd, std::string leftover);

  /// Sends a text or binary message; false once the connection failed.
  bool send(uint8_t opcode, std::string_view payload);

  /// Sends a close frame (skipped if a writer is stuck for more than
  /// 200 ms) and half-closes the socket.
  void close(uint16_t code, std::string_view reason);

  /// Outcome of read_message().
  enum class read_result { message, timeout, closed };

  /// Reads the next data message (fragments joined; pings answered; a
  /// close frame answered and reported as closed).
  read_result read_message(std::string& payload, uint8_t& opcode,
                           int timeout_ms);

  /// Whether close() was called or a write failed.
  bool closed() const;

private:
  bool write_raw(const std::string& bytes);

  int fd_;
  frame_parser parser_;
  /// Timed: close() waits briefly for a writer, not for a stuck one.
  mutable std::timed_mutex write_mtx_;
  /// Atomic: read without the write lock, which a stuck writer holds.
  std::atomic<bool> failed_{false};
  std::atomic<bool> closed_{false};
  std::string partial_;
  uint8_t partial_op_ = 0;
};

/// Validates a WebSocket handshake request and switches the connection
/// under `w` to the WebSocket protocol (101). On a bad handshake answers
/// 400 itself and returns null.
std::shared_ptr<connection> upgrade(const base::http_request& req,
                                    base::response_writer& w);

} // namespace osb::execd::ws
