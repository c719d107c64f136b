#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/model.hpp"
#include "runtimes/runtime.hpp"

/// Claims of pool members on Kubernetes (docs/pools.md, "Pools on
/// Kubernetes"): a member is a pod whose execd runs `--await-claim`; a
/// claim posts the entrypoint and env to execd at the pod's IP
/// (runtimes/execd_claim.hpp), then marks the pod claimed and keeps the
/// claimed spec in its annotations, so that a replica that lost its store
/// adopts it as a sandbox, and an unclaimed one as a member.
namespace osb::runtimes::kubernetes {

/// Delivers claim `c` to execd at `address:port` with `token`; `cb` runs
/// once, on any thread.
using execd_claimer
  = std::function<void(const std::string& address, uint16_t port,
                       const std::string& token, const claim_request& c,
                       callback<unit> cb)>;

/// The spec a claim makes of a member's: its entrypoint (when the claim
/// names one) and its env added (what the sandbox actor stores; the
/// claim's metadata and expiry follow with `record`).
sandbox_spec claimed_spec(const sandbox_spec& member, const claim_request& c);

/// A JSON merge patch that marks a member's workload (its pod, or its
/// agent-sandbox `Sandbox`) claimed and keeps `spec` (and its hash) as its
/// spec; when `with_state`, also the expiry and metadata annotations of
/// `state_patch` (and, for a `Sandbox`, its `spec.shutdownTime`, as
/// `sandbox_state_patch`).
std::string claim_patch(const sandbox_spec& spec, bool with_state = false,
                        int64_t expires_us = 0, bool sandbox_object = false);

} // namespace osb::runtimes::kubernetes
