#pragma once

#include <map>
#include <string>

#include "core/config.hpp"
#include "runtimes/docker/engine.hpp"
#include "runtimes/runtime.hpp"

/// The containers of a sandbox on a Docker host: the sandbox container (its
/// workload) and, with a network policy, the egress sidecar that owns its
/// network namespace.
namespace osb::runtimes::docker {

/// Where execd lives inside every sandbox.
constexpr const char* execd_container_path = "/opt/opensandbox/execd";

/// Container name of a sandbox.
std::string container_name(const std::string& id);

/// Container name of a sandbox's egress sidecar.
std::string sidecar_name(const std::string& id);

/// The labels that scope a listing to one runtime host of one node.
std::map<std::string, std::string> scope_labels(const std::string& node,
                                                const std::string& host);

/// Builds the container of a sandbox from its spec and reserved ports,
/// under the OCI runtime of `[secure_runtime]` if one is configured.
/// @param publish_address host address its published ports bind to.
container_spec make_container_spec(const node_config& cfg,
                                   const sandbox_instance& x,
                                   const std::string& publish_address);

/// Builds the egress sidecar of a sandbox with a network policy: it owns the
/// network namespace (NET_ADMIN), the published ports and the policy.
/// @param publish_address host address its published ports bind to.
container_spec make_sidecar_spec(const node_config& cfg,
                                 const sandbox_instance& x,
                                 const std::string& publish_address);

} // namespace osb::runtimes::docker
