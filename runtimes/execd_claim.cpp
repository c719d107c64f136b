#include "runtimes/execd_claim.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "core/json.hpp"

namespace osb::runtimes {

namespace {

/// Bound of one claim: execd answers once the entrypoint was exec'd, which
/// takes milliseconds; a member that does not answer is broken.
constexpr int claim_timeout_ms = 10000;

/// One blocking HTTP/1.1 exchange with `Connection: close`: the status and
/// body, or a failure.
expected<std::pair<int, std::string>>
post(const std::string& host, uint16_t port, const std::string& path,
     const std::string& token, const std::string& body) {
  auto where = host + ":" + std::to_string(port);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return failure{failure_kind::failed,
                   std::string{"socket: "} + std::strerror(errno)};
  timeval tv{claim_timeout_ms / 1000, (claim_timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    // A remote Docker host named by its DNS name.
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0
        || found == nullptr) {
      ::close(fd);
      return failure{failure_kind::unavailable,
                     "cannot resolve the execd host " + host};
    }
    addr.sin_addr
      = reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr;
    ::freeaddrinfo(found);
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    auto e = errno;
    ::close(fd);
    return failure{failure_kind::unavailable,
                   "execd at " + where + " does not answer: "
                     + std::strerror(e)};
  }
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + where
                    + "\r\nConnection: close\r\nContent-Type: "
                      "application/json\r\nX-EXECD-ACCESS-TOKEN: "
                    + token + "\r\nContent-Length: "
                    + std::to_string(body.size()) + "\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      auto e = errno;
      ::close(fd);
      return failure{failure_kind::unavailable,
                     "sending the claim to execd at " + where + " failed: "
                       + std::strerror(e)};
    }
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      if (answer.size() > (1 << 20))
        break;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto e = errno;
      ::close(fd);
      return failure{e == EAGAIN || e == EWOULDBLOCK ? failure_kind::timeout
                                                     : failure_kind::failed,
                     "execd at " + where + " did not answer the claim: "
                       + std::strerror(e)};
    }
    break;
  }
  ::close(fd);
  if (answer.size() < 12 || answer.compare(0, 5, "HTTP/") != 0)
    return failure{failure_kind::failed,
                   "execd at " + where + " answered the claim with no "
                                         "HTTP response"};
  auto status = std::atoi(answer.c_str() + 9);
  auto head_end = answer.find("\r\n\r\n");
  auto text = head_end == std::string::npos ? std::string{}
                                            : answer.substr(head_end + 4);
  return std::make_pair(status, std::move(text));
}

} // namespace

std::string claim_body(const claim_request& c) {
  json::writer o;
  o.begin_object();
  o.key("entrypoint").strings(c.entrypoint);
  o.key("env").map(c.env);
  o.end_object();
  return o.release();
}

void post_claim(std::string host, uint16_t port, std::string token,
                const claim_request& c, callback<unit> cb) {
  std::thread{[host = std::move(host), port, token = std::move(token),
               body = claim_body(c), cb = std::move(cb)] {
    auto r = post(host, port, "/bootstrap/claim", token, body);
    if (!r)
      return cb(r.error());
    auto& [status, text] = *r;
    if (status == 200)
      return cb(unit{});
    auto kind = status == 409 ? failure_kind::conflict : failure_kind::failed;
    cb(failure{kind, "execd refused the claim (" + std::to_string(status)
                       + "): " + text});
  }}.detach();
}

} // namespace osb::runtimes
