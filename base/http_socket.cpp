#include "base/http_socket.hpp"

#include <poll.h>

#include <cerrno>

namespace osb::base {

bool timed_socket::wait_readable(error_code& ec) {
  if (timeout_ms < 0 && watch_fd < 0 && !deadline)
    return true;
  pollfd p[2] = {{fd(), POLLIN, 0}, {watch_fd, POLLRDHUP, 0}};
  nfds_t n = watch_fd >= 0 ? 2 : 1;
  for (;;) {
    auto wait_ms = timeout_ms;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    *deadline - std::chrono::steady_clock::now())
                    .count();
      if (left <= 0) {
        ec = boost::asio::error::timed_out;
        return false;
      }
      if (wait_ms < 0 || left < wait_ms)
        wait_ms = static_cast<int>(left);
    }
    auto rc = ::poll(p, n, wait_ms);
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      ec = error_code{errno, boost::system::system_category()};
      return false;
    }
    if (rc == 0) {
      if (deadline && std::chrono::steady_clock::now() < *deadline)
        continue; // woke early for the deadline's rounding
      ec = boost::asio::error::timed_out;
      return false;
    }
    if (p[0].revents != 0)
      return true;
    if (n == 2 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      ec = boost::asio::error::connection_aborted;
      return false;
    }
  }
}

} // namespace osb::base
