#pragma once

#include "core/config.hpp"
#include "core/expected.hpp"
#include "runtimes/registry.hpp"

/// The entries of runtimes/registry.cpp for `runtime.type = "kubernetes"`:
/// one runtime host ("default") whose sandboxes are the pods of one
/// namespace.
namespace osb::runtimes::kubernetes {

/// Completes the configuration: execd comes from `runtime.execd_image` by
/// an init container, nothing is injected from this machine.
bool prepare(node_config& cfg);

/// The API server's client (kubeconfig or in-cluster service account), the
/// informer of this node's pods and the runtime over both. A kubeconfig
/// that cannot be read or a node name that is no label value is `invalid`
/// with a message that says what to fix.
expected<std::vector<host_runtime>> make_hosts(const runtime_context& ctx);

} // namespace osb::runtimes::kubernetes
