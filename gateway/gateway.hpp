#pragma once

// The GATEWAY: where REST calls become messages to the NODE actor, on the
// HTTP side of the boundary (actors/ never includes an HTTP header). The
// HTTP layer calls http::lifecycle_backend; this backend forwards each call
// as a typed request to the node and translates the answer back.

#include <caf/actor_system.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "http/api.hpp"

namespace osb::gateway {

/// A running gateway: the backend the HTTP layer calls, and its actor (to
/// stop it with the others at shutdown).
struct running_gateway {
  std::shared_ptr<http::lifecycle_backend> backend;
  caf::actor actor;
};

/// One readiness check beyond the node's own (the runtime answers, the
/// store takes a write): calls its argument once, with "" when fine, else
/// the reason; from any thread, without blocking.
using readiness_check
  = std::function<void(std::function<void(std::string)>)>;

/// Starts the gateway over the NODE actor `node`. Calls of the backend never
/// block the calling (I/O) thread: each one is a message to the small
/// GATEWAY actor, which sends the request and completes the reply.
/// `GET /ready` asks the node, then runs `checks` in order (first reason
/// wins).
running_gateway start(caf::actor_system& sys, node_actor node,
                      std::vector<readiness_check> checks = {});

} // namespace osb::gateway
