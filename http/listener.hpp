#pragma once

// Internal to the HTTP server: the acceptor (see session.hpp).

#include "http/session.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace osb::http::detail {

/// Accepts incoming connections and launches the sessions, round robin over
/// the I/O threads' io_contexts. At `limit_concurrency` a new connection
/// evicts the one that has waited longest for a request; only when every
/// connection is busy does the newcomer get a 503.
class listener : public std::enable_shared_from_this<listener> {
public:
  explicit listener(std::shared_ptr<shared_state> state);

  /// Opens, binds and listens; returns an error text on failure.
  std::string open(const tcp::endpoint& ep, int backlog);

  /// The bound port (0 if unknown).
  uint16_t port() const;

  /// Starts accepting.
  void run();

  /// Stops accepting; only called by stop() after the I/O threads joined.
  void close();

private:
  void do_accept();

  void on_accept(error_code ec, socket_type socket);

  /// Evicts the connection that has waited longest without sending a
  /// complete request; false if no connection waits.
  bool evict_one();

  std::shared_ptr<shared_state> state_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  /// Round robin over the io_contexts (only touched by the accept chain).
  size_t next_ = 0;
};

} // namespace osb::http::detail
