#pragma once

#include "net/egress/dns_message.hpp"
#include "net/egress/firewall.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace osb::egress {

/// What the proxy does with one client message.
struct dns_verdict {
  enum kind_t { drop, reply, forward } kind = drop;
  /// The answer for `reply` (NXDOMAIN, FORMERR, NOTIMP).
  std::vector<uint8_t> answer;
  /// The question name for `forward` (normalized presentation form).
  std::string name;
  uint16_t qtype = 0;
};

/// Returns whether a (normalized) name may be resolved.
using decide_fn = std::function<bool(const std::string& name)>;

/// Classifies a client message: responses and runts are dropped, opcodes
/// other than QUERY get NOTIMP, anything but exactly one parseable question
/// gets FORMERR, denied names NXDOMAIN (question echoed), the rest is
/// forwarded.
dns_verdict classify_query(const uint8_t* data, size_t size,
                           const decide_fn& decide);

/// Returns whether `response` answers `query`: same ID, QR set, same first
/// question (name case-insensitively, type and class).
bool answers(const uint8_t* query, size_t query_size, const uint8_t* response,
             size_t response_size);

/// The DNS filtering proxy: UDP and TCP on 127.0.0.1 (and ::1 when IPv6 is
/// up), one thread (the io_context's). Allowed queries go to the upstreams in
/// order over UDP from marked sockets (a TCP client's truncated answer is
/// fetched again over TCP); NOERROR and
/// NXDOMAIN are final, anything else fails over; total failure is SERVFAIL.
class dns_proxy {
public:
  struct options {
    std::vector<upstream> upstreams;
    /// Listen port on the loopback addresses.
    uint16_t port = 53;
    /// SO_MARK of upstream sockets; 0 = none.
    uint32_t mark = 0;
    /// Budget of one query across all upstreams.
    std::chrono::milliseconds timeout{5000};
    /// Concurrent upstream exchanges; beyond this clients get SERVFAIL.
    size_t max_inflight = 256;
    /// Concurrent TCP clients.
    size_t max_tcp_clients = 64;
  };

  /// Called for allowed NOERROR answers before the client gets them.
  using learn_fn = std::function<void(
    const std::string& name, const std::vector<dns::answer_address>&)>;

  /// Counters since start.
  struct counters {
    uint64_t queries = 0;
    uint64_t denied = 0;
    uint64_t forwarded = 0;
    uint64_t failed = 0;
  };

  dns_proxy(boost::asio::io_context& io, options opts, decide_fn decide,
            learn_fn learn);
  ~dns_proxy();

  /// Binds 127.0.0.1 (required) and ::1 (best effort), UDP and TCP, and
  /// starts serving.
  bool start(std::string* error);

  const counters& stats() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace osb::egress
