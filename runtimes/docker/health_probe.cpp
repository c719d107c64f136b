#include "runtimes/docker/health_probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace osb::runtimes::docker {

int http_get_status(const std::string& host, uint16_t port,
                    const std::string& path,
                    const std::map<std::string, std::string>& headers,
                    int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1
      || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
           != 0) {
    ::close(fd);
    return 0;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host
                    + "\r\nConnection: close\r\n";
  for (auto& [k, v] : headers)
    req += k + ": " + v + "\r\n";
  req += "\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  char buf[64];
  auto n = ::recv(fd, buf, sizeof(buf) - 1, 0);
  ::close(fd);
  if (n < 12)
    return 0;
  buf[n] = '\0';
  return std::atoi(buf + 9);
}

void await_healthy(std::string host, uint16_t port, std::string path,
                   std::map<std::string, std::string> headers,
                   int64_t deadline_ms,
                   std::function<void(expected<unit>)> done) {
  std::thread{[=, done = std::move(done)] {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::milliseconds(deadline_ms);
    int status = 0;
    while (clock::now() < deadline) {
      status = http_get_status(host, port, path, headers, 500);
      if (status >= 200 && status < 300) {
        done(unit{});
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    done(failure{failure_kind::failed,
                 "no healthy answer from " + host + ":" + std::to_string(port)
                   + path + " within " + std::to_string(deadline_ms / 1000)
                   + "s (last status " + std::to_string(status) + ")"});
  }}.detach();
}

} // namespace osb::runtimes::docker
