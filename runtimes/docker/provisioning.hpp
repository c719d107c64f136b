#pragma once

#include <functional>
#include <memory>

#include "runtimes/docker/engine.hpp"
#include "runtimes/runtime.hpp"

namespace osb::runtimes::docker {

class docker_runtime;

/// Provisions a sandbox on a Docker host, one engine call after the other:
/// leftovers of an earlier attempt removed (unless `opts.fresh`), volumes
/// prepared (host directories checked and created, named volumes inspected
/// or created), the egress sidecar created, started and awaited healthy,
/// the sandbox container created (pulling its image), under gVisor its /tmp
/// kept on the container's filesystem, execd uploaded (archive injection),
/// the container started. The cancel flag is checked
/// before each step. Failures carry the API's reason; a host port that
/// another program holds and a name that an earlier create still holds
/// come back with their remedy.
void provision_sandbox(std::shared_ptr<const docker_runtime> rt,
                       const sandbox_instance& x, provision_options opts,
                       std::function<void(provision_result)> done);

/// Removes the sandbox container, then its egress sidecar (which owns the
/// network namespace the sandbox uses); missing ones are success.
void remove_containers(const engine_ptr& engine, const sandbox_instance& x,
                       callback<unit> done);

} // namespace osb::runtimes::docker
