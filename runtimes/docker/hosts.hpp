#pragma once

#include <string>
#include <vector>

#include "core/config.hpp"
#include "runtimes/registry.hpp"

/// The Docker hosts of a node (`docker.host` or `docker.hosts`): the
/// configuration they need, and one Docker runtime per host. The entries of
/// runtimes/registry.cpp for `runtime.type` "docker" and "fake".
namespace osb::runtimes::docker {

/// Finds the execd binary and decides how it gets into sandboxes: a
/// read-only bind mount when the Docker daemon shares our filesystem (local
/// socket), else one archive upload per sandbox (`runtime.execd_inject`,
/// `runtime.execd_path` are resolved in place).
bool prepare_hosts(node_config& cfg);

/// The same for the in-memory engine: nothing goes into its sandboxes.
bool prepare_fake_hosts(node_config& cfg);

/// One Docker runtime per configured host over the Engine API client.
std::vector<host_runtime> make_hosts(const runtime_context& ctx);

/// The same over the in-memory engine (`runtime.type = "fake"`, for
/// benchmarks of the control plane).
std::vector<host_runtime> make_fake_hosts(const runtime_context& ctx);

/// Host part of a `tcp://host:port` or `ssh://[user@]host[:port]` Docker
/// address (where the sandboxes' published ports are reachable); empty for
/// local sockets.
std::string endpoint_host_of(const std::string& docker_host);

/// Whether a Docker host runs on this machine (its bind paths are ours):
/// unix sockets and loopback TCP; ssh:// and other TCP hosts are remote.
bool shares_filesystem(const std::string& docker_host);

} // namespace osb::runtimes::docker
