// RFC 6455 framing and execd's server-side WebSocket connection.

#include "execd/websocket.hpp"

#include "base/http_socket.hpp"
#include "base/strings.hpp"
#include "execd/digest.hpp"
#include "execd/routes.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <algorithm>
#include <chrono>

namespace osb::execd::ws {

namespace {

constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Messages (and frames) beyond this end the connection: terminal input
/// comes in keystrokes and pastes.
constexpr uint64_t max_message = 4 * 1024 * 1024;

} // namespace

std::string accept_key(std::string_view client_key) {
  std::string x{client_key};
  x.append(guid.data(), guid.size());
  auto d = sha1(x);
  return base64_encode(
    std::string_view{reinterpret_cast<const char*>(d.data()), d.size()});
}

void append_frame(std::string& out, uint8_t opcode, std::string_view payload,
                  bool mask, uint32_t key) {
  out += static_cast<char>(0x80 | (opcode & 0x0f));
  uint8_t m = mask ? 0x80 : 0;
  auto n = payload.size();
  if (n < 126) {
    out += static_cast<char>(m | n);
  } else if (n <= 0xffff) {
    out += static_cast<char>(m | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(m | 127);
    for (int i = 7; i >= 0; --i)
      out += static_cast<char>((static_cast<uint64_t>(n) >> (i * 8)) & 0xff);
  }
  if (!mask) {
    out.append(payload.data(), payload.size());
    return;
  }
  uint8_t k[4] = {static_cast<uint8_t>(key >> 24),
                  static_cast<uint8_t>(key >> 16),
                  static_cast<uint8_t>(key >> 8), static_cast<uint8_t>(key)};
  out.append(reinterpret_cast<const char*>(k), 4);
  auto start = out.size();
  out.append(payload.data(), payload.size());
  for (size_t i = 0; i < n; ++i)
    out[start + i] = static_cast<char>(out[start + i] ^ k[i % 4]);
}

std::string close_payload(uint16_t code, std::string_view reason) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xff);
  p.append(reason.substr(0, 123));
  return p;
}

void frame_parser::feed(std::string_view data) {
  if (off_ > 0 && off_ >= buf_.size() / 2) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_.append(data.data(), data.size());
}

frame_parser::result frame_parser::next(frame& out) {
  auto avail = buf_.size() - off_;
  if (avail < 2)
    return result::incomplete;
  auto p = reinterpret_cast<const uint8_t*>(buf_.data() + off_);
  if ((p[0] & 0x70) != 0)
    return result::error; // no extension was negotiated
  bool masked = (p[1] & 0x80) != 0;
  if (masked != expect_masked_)
    return result::error;
  uint64_t len = p[1] & 0x7f;
  size_t head = 2;
  if (len == 126) {
    if (avail < 4)
      return result::incomplete;
    len = (uint64_t{p[2]} << 8) | p[3];
    head = 4;
  } else if (len == 127) {
    if (avail < 10)
      return result::incomplete;
    len = 0;
    for (int i = 2; i < 10; ++i)
      len = (len << 8) | p[i];
    head = 10;
  }
  uint8_t op = p[0] & 0x0f;
  if (op >= 0x8 && (len > 125 || !(p[0] & 0x80)))
    return result::error; // control frames are short and whole
  if (len > max_payload_)
    return result::too_big;
  size_t mask_at = head;
  if (masked)
    head += 4;
  if (avail < head + len)
    return result::incomplete;
  out.opcode = op;
  out.fin = (p[0] & 0x80) != 0;
  out.payload.assign(buf_.data() + off_ + head, static_cast<size_t>(len));
  if (masked)
    for (size_t i = 0; i < out.payload.size(); ++i)
      out.payload[i]
        = static_cast<char>(out.payload[i] ^ p[mask_at + (i % 4)]);
  off_ += head + static_cast<size_t>(len);
  return result::frame;
}

connection::connection(int fd, std::string leftover)
  : fd_(fd), parser_(true, max_message) {
  parser_.feed(leftover);
  timeval tv{10, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool connection::write_raw(const std::string& bytes) {
  std::string_view rest = bytes;
  while (!rest.empty()) {
    auto n = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      failed_ = true;
      return false;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool connection::send(uint8_t opcode, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 10);
  append_frame(out, opcode, payload);
  std::lock_guard<std::timed_mutex> guard{write_mtx_};
  if (failed_ || closed_)
    return false;
  return write_raw(out);
}

void connection::close(uint16_t code, std::string_view reason) {
  {
    std::unique_lock<std::timed_mutex> lock{write_mtx_,
                                            std::chrono::milliseconds(200)};
    if (lock.owns_lock()) {
      if (!closed_ && !failed_) {
        std::string out;
        append_frame(out, op_close, close_payload(code, reason));
        write_raw(out);
      }
      closed_ = true;
    } else {
      // A writer is stuck on a stalled client: skip the frame; the
      // shutdown below unblocks it.
      closed_ = true;
    }
  }
  // Half-close: the peer still gets everything sent before, and answers
  // with its own close, which read_message() waits for (briefly).
  ::shutdown(fd_, SHUT_WR);
}

bool connection::closed() const {
  return closed_ || failed_;
}

connection::read_result connection::read_message(std::string& payload,
                                                  uint8_t& opcode,
                                                  int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    frame f;
    auto r = parser_.next(f);
    if (r == frame_parser::result::error
        || r == frame_parser::result::too_big) {
      close(r == frame_parser::result::too_big ? close_too_big
                                               : close_protocol_error,
            "bad frame");
      return read_result::closed;
    }
    if (r == frame_parser::result::frame) {
      switch (f.opcode) {
        case op_ping: {
          std::string out;
          append_frame(out, op_pong, f.payload);
          std::lock_guard<std::timed_mutex> guard{write_mtx_};
          if (!closed_ && !failed_)
            write_raw(out);
          continue;
        }
        case op_pong:
          payload.clear();
          opcode = op_pong;
          return read_result::message;
        case op_close: {
          uint16_t code = close_normal;
          if (f.payload.size() >= 2)
            code = static_cast<uint16_t>(
              (static_cast<uint8_t>(f.payload[0]) << 8)
              | static_cast<uint8_t>(f.payload[1]));
          close(code, "");
          return read_result::closed;
        }
        case op_continuation:
          if (partial_op_ == 0) {
            close(close_protocol_error, "unexpected continuation");
            return read_result::closed;
          }
          partial_ += f.payload;
          break;
        case op_text:
        case op_binary:
          if (partial_op_ != 0) {
            close(close_protocol_error, "interleaved message");
            return read_result::closed;
          }
          partial_op_ = f.opcode;
          partial_ = std::move(f.payload);
          break;
        default:
          close(close_protocol_error, "unknown opcode");
          return read_result::closed;
      }
      if (partial_.size() > max_message) {
        close(close_too_big, "message too big");
        return read_result::closed;
      }
      if (f.fin) {
        payload = std::move(partial_);
        opcode = partial_op_;
        partial_.clear();
        partial_op_ = 0;
        return read_result::message;
      }
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    // After our close, the peer gets 2 s to answer with its own.
    bool closing = closed();
    if (closing)
      left = std::min<int64_t>(left, 2000);
    if (left <= 0)
      return closing ? read_result::closed : read_result::timeout;
    pollfd p{fd_, POLLIN, 0};
    auto rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc == 0)
      return closing ? read_result::closed : read_result::timeout;
    if (rc < 0)
      return read_result::closed;
    char buf[65536];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR)
        continue;
      failed_ = true;
      return read_result::closed;
    }
    parser_.feed({buf, static_cast<size_t>(n)});
  }
}

std::shared_ptr<connection> upgrade(const base::http_request& req,
                                    base::response_writer& w) {
  auto bad = [&](const std::string& why) -> std::shared_ptr<connection> {
    send_error(w, 400, "INVALID_REQUEST", why);
    return nullptr;
  };
  if (!base::has_token(req.header("upgrade"), "websocket")
      || !base::has_token(req.header("connection"), "upgrade"))
    return bad("a WebSocket upgrade (Connection: Upgrade, Upgrade: "
               "websocket) is required");
  if (req.header("sec-websocket-version") != "13")
    return bad("Sec-WebSocket-Version 13 is required");
  auto& key = req.header("sec-websocket-key");
  if (key.size() != 24)
    return bad("a valid Sec-WebSocket-Key is required");
  auto* raw = w.raw();
  if (raw == nullptr)
    return bad("no connection to upgrade");
  std::string head = "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: "
                     + accept_key(key) + "\r\n\r\n";
  auto fd = raw->client().fd();
  std::string_view rest = head;
  while (!rest.empty()) {
    auto n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      raw->relayed(101, false);
      return nullptr;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  // The server must not touch the connection again: it is ours now.
  raw->relayed(101, false);
  auto& buf = raw->buffer();
  std::string leftover{static_cast<const char*>(buf.data().data()),
                       buf.data().size()};
  buf.consume(buf.size());
  return std::make_shared<connection>(fd, std::move(leftover));
}

} // namespace osb::execd::ws
