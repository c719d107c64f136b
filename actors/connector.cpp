#include "actors/connector.hpp"

#include <caf/io/middleman.hpp>
#include <caf/sec.hpp>

#include "actors/cluster_transport.hpp"
#include "actors/error.hpp"

namespace osb {

namespace {

/// Bounds the TCP connect plus the TLS and BASP handshakes.
constexpr auto handshake_timeout = std::chrono::seconds(10);

} // namespace

connector_actor::behavior_type connector(connector_actor::pointer self,
                                         caf::io::middleman_actor transport) {
  return {
    [=](atom::connect, std::string& address) -> caf::result<node_actor> {
      self->quit();
      auto colon = address.rfind(':');
      if (colon == std::string::npos)
        return make_error(ec::invalid_parameter,
                          "cluster address '" + address
                            + "' is not host:port");
      auto host = address.substr(0, colon);
      auto port = static_cast<uint16_t>(std::stoi(address.substr(colon + 1)));
      auto& sys = self->system();
      auto peer = transport
                    ? connect_node(sys, transport, host, port,
                                   handshake_timeout)
                    : sys.middleman().remote_actor<node_actor>(host, port);
      if (peer)
        return *peer;
      if (peer.error() == caf::sec::unexpected_actor_messaging_interface)
        return make_error(ec::cluster_incompatible,
                          "the node at " + address
                            + " runs an incompatible version (its actor "
                              "interface differs from ours)");
      return make_error(ec::node_unavailable,
                        "cannot connect to " + address + ": "
                          + sys.render(peer.error()));
    },
  };
}

} // namespace osb
