#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "runtimes/docker/engine.hpp"

/// The OCI runtime of the sandbox containers (`[secure_runtime]`: gVisor's
/// `runsc`, Kata's `kata-runtime`): whether a Docker host can run it, and
/// what a failed create or start under it tells the user. The egress
/// sidecar always runs under the daemon's default runtime (it needs
/// nftables in a real kernel namespace, see docs/gvisor.md).
namespace osb::runtimes::docker {

/// Why the Docker host described by `info` cannot run containers under
/// OCI runtime `name`, or nullopt when it can. `host` names the host in the
/// message; `local_fs` allows checking the registered binary's path on
/// this machine.
std::optional<std::string> check_oci_runtime(const daemon_info& info,
                                             const std::string& name,
                                             const std::string& host,
                                             bool local_fs);

/// What to add to the message of a failed create or start of a sandbox
/// container under OCI runtime `name` (empty = nothing, e.g. an unrelated
/// failure or no secure runtime): Docker's own words do not say that the
/// server chose the runtime, nor how to register it.
std::string oci_runtime_hint(const std::string& name,
                             const std::string& docker_message);

/// Whether sandboxes run under gVisor (`secure_runtime.type = "gvisor"`).
bool is_gvisor(const node_config& cfg);

/// What a sandbox container under gVisor gets before its start: an empty
/// directory `/tmp/.opensandbox` (and /tmp, mode 1777, if the image has
/// none). runsc mounts a tmpfs of its own over an empty /tmp: its files
/// would live in the sandbox's memory and miss from snapshots (docker
/// commit), unlike under runc. A non-empty /tmp stays the container's.
std::shared_ptr<const std::string> gvisor_tmp_archive();

} // namespace osb::runtimes::docker
