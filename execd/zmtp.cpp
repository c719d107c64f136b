// ZMTP 3.0 framing and a blocking client socket (execd/zmtp.hpp).

#include "execd/zmtp.hpp"

#include "execd/util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace osb::execd {

namespace {

constexpr uint8_t flag_more = 0x01;
constexpr uint8_t flag_long = 0x02;
constexpr uint8_t flag_command = 0x04;

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now())
                .count();
  return left < 0 ? 0 : static_cast<int>(left);
}

} // namespace

void zmtp_parser::feed(std::string_view data) {
  if (off_ > 0 && off_ >= buf_.size() / 2) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_.append(data.data(), data.size());
}

zmtp_parser::result zmtp_parser::next(std::vector<std::string>& parts) {
  for (;;) {
    auto avail = buf_.size() - off_;
    if (avail < 2)
      return result::incomplete;
    auto p = reinterpret_cast<const uint8_t*>(buf_.data() + off_);
    auto flags = p[0];
    if ((flags & ~(flag_more | flag_long | flag_command)) != 0)
      return result::error;
    uint64_t size;
    size_t head;
    if (flags & flag_long) {
      if (avail < 9)
        return result::incomplete;
      size = 0;
      for (int i = 1; i <= 8; ++i)
        size = (size << 8) | p[i];
      head = 9;
    } else {
      size = p[1];
      head = 2;
    }
    if (size > max_frame_)
      return result::error;
    if (avail < head + size)
      return result::incomplete;
    std::string body{buf_.data() + off_ + head, static_cast<size_t>(size)};
    off_ += head + static_cast<size_t>(size);
    if (flags & flag_command) {
      parts.clear();
      parts.push_back(std::move(body));
      return result::command;
    }
    pending_.push_back(std::move(body));
    if (!(flags & flag_more)) {
      parts = std::move(pending_);
      pending_.clear();
      return result::message;
    }
  }
}

void zmtp_append_frame(std::string& out, std::string_view body, bool more,
                       bool command) {
  uint8_t flags = (more ? flag_more : 0) | (command ? flag_command : 0);
  if (body.size() > 255) {
    out += static_cast<char>(flags | flag_long);
    uint64_t n = body.size();
    for (int i = 7; i >= 0; --i)
      out += static_cast<char>((n >> (i * 8)) & 0xff);
  } else {
    out += static_cast<char>(flags);
    out += static_cast<char>(body.size());
  }
  out.append(body.data(), body.size());
}

std::string zmtp_greeting() {
  std::string g(64, '\0');
  g[0] = static_cast<char>(0xff);
  g[9] = 0x7f;
  g[10] = 3; // version 3.0: subscriptions travel as messages
  g[11] = 0;
  g.replace(12, 4, "NULL");
  g[32] = 0; // as-server: no
  return g;
}

std::string zmtp_ready(std::string_view socket_type) {
  std::string body;
  body += static_cast<char>(5);
  body += "READY";
  std::string_view name = "Socket-Type";
  body += static_cast<char>(name.size());
  body.append(name.data(), name.size());
  uint32_t n = static_cast<uint32_t>(socket_type.size());
  for (int i = 3; i >= 0; --i)
    body += static_cast<char>((n >> (i * 8)) & 0xff);
  body.append(socket_type.data(), socket_type.size());
  std::string out;
  zmtp_append_frame(out, body, false, true);
  return out;
}

zmtp_socket::~zmtp_socket() {
  close();
}

void zmtp_socket::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

bool zmtp_socket::write_all(std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      failed_ = true;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool zmtp_socket::connect(uint16_t port, std::string_view socket_type,
                          int timeout_ms, std::string* err, bool* refused) {
  auto fail = [&](std::string what) {
    if (err != nullptr)
      *err = std::move(what);
    close();
    return false;
  };
  if (refused != nullptr)
    *refused = false;
  close();
  parser_ = zmtp_parser{};
  failed_ = false;
  auto deadline
    = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    return fail("socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    auto e = errno;
    if (refused != nullptr)
      *refused = e == ECONNREFUSED;
    return fail("connect to 127.0.0.1:" + std::to_string(port) + ": "
                + errno_text(e));
  }
  if (!write_all(zmtp_greeting()))
    return fail("cannot send the ZMTP greeting");
  // The peer's greeting: 64 bytes.
  std::string greet;
  while (greet.size() < 64) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0)
      return fail("no ZMTP greeting from 127.0.0.1:" + std::to_string(port));
    char tmp[64];
    auto n = ::recv(fd_, tmp, 64 - greet.size(), 0);
    if (n <= 0)
      return fail("connection closed during the ZMTP greeting");
    greet.append(tmp, static_cast<size_t>(n));
  }
  if (static_cast<uint8_t>(greet[0]) != 0xff || (greet[9] & 1) != 1
      || greet[10] < 3 || greet.compare(12, 4, "NULL") != 0)
    return fail("the peer does not speak ZMTP 3 with the NULL mechanism");
  if (!write_all(zmtp_ready(socket_type)))
    return fail("cannot send READY");
  // The peer's READY.
  std::vector<std::string> parts;
  for (;;) {
    auto r = parser_.next(parts);
    if (r == zmtp_parser::result::command) {
      if (parts[0].size() >= 6 && parts[0].compare(0, 6, "\x05READY") == 0)
        break;
      if (parts[0].size() >= 6 && parts[0].compare(0, 6, "\x05" "ERROR") == 0)
        return fail("the peer refused the handshake");
      continue;
    }
    if (r == zmtp_parser::result::error || r == zmtp_parser::result::message)
      return fail("unexpected data during the ZMTP handshake");
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0)
      return fail("no READY from 127.0.0.1:" + std::to_string(port));
    if (!fill())
      return fail("connection closed during the ZMTP handshake");
  }
  return true;
}

bool zmtp_socket::send(const std::vector<std::string_view>& parts) {
  if (fd_ < 0 || failed_)
    return false;
  size_t total = 0;
  for (auto& p : parts)
    total += p.size() + 9;
  std::string out;
  out.reserve(total);
  for (size_t i = 0; i < parts.size(); ++i)
    zmtp_append_frame(out, parts[i], i + 1 < parts.size());
  return write_all(out);
}

bool zmtp_socket::subscribe(std::string_view prefix) {
  std::string msg = "\x01";
  msg.append(prefix.data(), prefix.size());
  return send({msg});
}

bool zmtp_socket::handle_command(const std::string& body) {
  // ZMTP 3.1 heartbeats (a peer with ZMQ_HEARTBEAT_IVL set): answer PING.
  if (body.size() >= 5 && body.compare(0, 5, "\x04PING") == 0) {
    // PING: ttl (2 bytes) + context; PONG echoes the context.
    std::string pong = "\x04PONG";
    if (body.size() > 7)
      pong.append(body, 7, std::string::npos);
    std::string out;
    zmtp_append_frame(out, pong, false, true);
    return write_all(out);
  }
  return true;
}

bool zmtp_socket::pop_buffered(std::vector<std::string>& parts) {
  for (;;) {
    auto r = parser_.next(parts);
    if (r == zmtp_parser::result::message)
      return true;
    if (r == zmtp_parser::result::command) {
      handle_command(parts[0]);
      continue;
    }
    if (r == zmtp_parser::result::error)
      failed_ = true;
    return false;
  }
}

bool zmtp_socket::fill() {
  if (fd_ < 0 || failed_)
    return false;
  char buf[65536];
  for (;;) {
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      parser_.feed({buf, static_cast<size_t>(n)});
      return true;
    }
    if (n < 0 && errno == EINTR)
      continue;
    failed_ = true;
    return false;
  }
}

zmtp_socket::status zmtp_socket::recv(std::vector<std::string>& parts,
                                      int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  for (;;) {
    if (pop_buffered(parts))
      return status::ok;
    if (failed_ || fd_ < 0)
      return status::error;
    pollfd p{fd_, POLLIN, 0};
    int wait = timeout_ms < 0 ? -1 : remaining_ms(deadline);
    auto rc = ::poll(&p, 1, wait);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      return status::timeout;
    if (!fill())
      return status::closed;
  }
}

} // namespace osb::execd
