#pragma once

#include <caf/typed_event_based_actor.hpp>

#include "actors/interfaces.hpp"

namespace osb {

/// Implements the CONNECTOR actor: one middleman connection attempt to a
/// peer's NODE actor, then it quits. `remote_actor` blocks in CAF 0.17
/// (a frozen peer can stall it), so spawn one per attempt with
/// `caf::detached`.
connector_actor::behavior_type connector(connector_actor::pointer self);

} // namespace osb
