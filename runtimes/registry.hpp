#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/expected.hpp"
#include "runtimes/ownership.hpp"
#include "runtimes/runtime.hpp"

/// Where the runtimes of a node come from: `runtime.type` picks one of the
/// registered kinds, which prepares the configuration and builds one
/// runtime per configured host. Adding a runtime = a folder under runtimes/
/// plus one line in registry.cpp.
namespace osb::runtimes {

/// What the process hands the runtimes it builds.
struct runtime_context {
  std::shared_ptr<const node_config> cfg;
  /// This node's name and this process's incarnation: what the runtimes
  /// make carries both.
  std::string node;
  std::string incarnation;
  /// Host the node's endpoints advertise (net::detect_public_host).
  std::string public_host;
  /// The host address published ports bind to, on a runtime host that is
  /// this machine or (`remote`) another one (net::resolve_publish_address).
  std::function<std::string(bool remote)> publish_address;
};

/// One runtime host of this node.
struct host_runtime {
  /// The host's stable name: rows, snapshots and runtime objects carry it.
  std::string name;
  /// Host that reaches the sandboxes' published ports; empty = the node's
  /// public host.
  std::string endpoint_host;
  runtime_ptr runtime;
  /// Whether this process may change the host's sandboxes now (a replica
  /// whose lease lapsed may not); null = always.
  std::shared_ptr<const ownership_gate> gate;
};

/// The configured runtime type's preparation of the configuration before
/// the process shares it (e.g. how execd gets into sandboxes). False when
/// the configuration cannot work (logged).
bool prepare_runtime(node_config& cfg);

/// Builds the runtime of every host configured for `runtime.type`
/// (`invalid` for an unknown type).
expected<std::vector<host_runtime>> make_runtimes(const runtime_context& ctx);

/// The start-up check: runs `verify` of every host and waits up to
/// `timeout` for each (blocking; for the process's main thread). The first
/// failure is returned (its message names the host); a host that does not
/// answer in time is logged and left to admission.
expected<unit> verify_runtimes(const std::vector<host_runtime>& hosts,
                               std::chrono::milliseconds timeout);

} // namespace osb::runtimes
