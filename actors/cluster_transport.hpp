#pragma once

#include <caf/expected.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <string>

#include "actors/interfaces.hpp"

namespace osb {

/// How the cluster port carries CAF's BASP.
struct transport_options {
  /// TLS with mutual certificate authentication through CAF's OpenSSL
  /// module (loaded and configured with the cluster's CA, this node's
  /// certificate and key); false = plain TCP.
  bool tls = true;
  /// Largest BASP message a peer may announce (payload bytes).
  uint32_t max_message_bytes = 64u << 20;
};

/// Spawns the cluster's MIDDLEMAN actor: CAF's implementation (publish,
/// connect, BASP handshakes through the BASP broker) with connections of
/// our own that speak TLS or TCP and pass every BASP frame through a
/// basp_guard before the broker sees it: a frame larger than the bound or
/// that the guard refuses closes the connection before it is read.
caf::io::middleman_actor spawn_transport(caf::actor_system& sys,
                                         transport_options opts);

/// Publishes `node` on `host`:`port` (0 = any port) through `mm`; returns
/// the port.
caf::expected<uint16_t> publish_node(caf::actor_system& sys,
                                     const caf::io::middleman_actor& mm,
                                     const node_actor& node,
                                     const std::string& host, uint16_t port);

/// Connects through `mm` to the NODE actor published at `host`:`port`,
/// waiting at most `timeout` (TCP connect, TLS and BASP handshakes).
caf::expected<node_actor> connect_node(caf::actor_system& sys,
                                       const caf::io::middleman_actor& mm,
                                       const std::string& host, uint16_t port,
                                       caf::timespan timeout);

/// Checks the cluster's TLS files before any connection needs them (CAF
/// raises an exception inside its I/O loop on a bad file): readable PEM,
/// the key matches the certificate, the certificate chains to the CA.
/// Returns an error message, or an empty string.
std::string check_tls_files(const std::string& ca_file,
                            const std::string& cert_file,
                            const std::string& key_file);

} // namespace osb
