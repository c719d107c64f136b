#pragma once

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <memory>

#include "actors/interfaces.hpp"
#include "http/api.hpp"

namespace osb {

/// Implements the GATEWAY actor: requests to the NODE actor; replies and
/// errors go back through the HTTP callbacks.
/// @param node The NODE actor of this process.
gateway_actor::behavior_type gateway(gateway_actor::pointer self,
                                     node_actor node);

/// Adapts the GATEWAY actor to the HTTP layer's backend interface. Calls
/// only enqueue a message: they never block an I/O thread.
std::shared_ptr<http::lifecycle_backend> make_actor_backend(gateway_actor gw);

} // namespace osb
