#pragma once

#include "net/egress/api.hpp"

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace osb::egress {

/// The HTTP/1.1 server of the policy API (Beast), on the io_context's
/// thread. Keep-alive, 1 MiB body limit, idle connections closed after 30 s.
class http_server {
public:
  http_server(boost::asio::io_context& io, policy_api& api);
  ~http_server();

  /// Binds `host:port` and starts accepting; false with `error` on failure.
  bool start(const std::string& host, uint16_t port, std::string* error);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace osb::egress
