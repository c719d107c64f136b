#include "net/ports.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace osb::net {

bool port_is_free(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return true;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  bool result = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
                == 0;
  ::close(fd);
  return result;
}

port_allocator::port_allocator(uint16_t first, uint16_t last)
  : first_(first), last_(last), rng_(std::random_device{}()) {
  // nop
}

std::optional<uint16_t> port_allocator::allocate() {
  std::uniform_int_distribution<int> dist{first_, last_};
  // Random probing keeps restarts from colliding with ports that Docker still
  // holds for containers of a previous run.
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto port = static_cast<uint16_t>(dist(rng_));
    if (reserved_.count(port) == 0 && port_is_free(port)) {
      reserved_.insert(port);
      return port;
    }
  }
  for (int port = first_; port <= last_; ++port) {
    auto p = static_cast<uint16_t>(port);
    if (reserved_.count(p) == 0 && port_is_free(p)) {
      reserved_.insert(p);
      return p;
    }
  }
  return std::nullopt;
}

void port_allocator::reserve(uint16_t port) {
  if (port != 0)
    reserved_.insert(port);
}

void port_allocator::release(uint16_t port) {
  reserved_.erase(port);
}

} // namespace osb::net
