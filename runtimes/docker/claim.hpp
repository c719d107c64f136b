#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runtimes/runtime.hpp"

/// Claims of pool members on a Docker host (docs/pools.md): a member's
/// execd holds its entrypoint back until the server posts the claim to
/// execd's `POST /bootstrap/claim` (execd/claim.hpp) with the sandbox's
/// access token.
namespace osb::runtimes::docker {

class fake_engine;

/// Delivers a claim to a member; `cb` runs once, on any thread.
using claimer = std::function<void(const sandbox_instance&,
                                   const claim_request&, callback<unit>)>;

/// execd's port on the host: the published one, or execd's own in host
/// network mode.
uint16_t execd_port_of(const sandbox_instance& x);

/// Posts claims over HTTP to execd at `host` (the address this machine
/// reaches the Docker host's published ports at) with `post_claim`
/// (runtimes/execd_claim.hpp).
claimer http_claimer(std::string host);

/// Claims against the in-memory engine (runtime.type "fake", tests): the
/// member's container must exist and run; the claim is recorded nowhere.
claimer fake_claimer(std::shared_ptr<fake_engine> engine);

} // namespace osb::runtimes::docker
