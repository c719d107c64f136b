#pragma once

#include <caf/io/middleman_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/interfaces.hpp"

namespace osb {

/// Implements the CONNECTOR actor: one middleman connection attempt to a
/// peer's NODE actor, then it quits. Connecting blocks in CAF 0.17 (a
/// frozen peer can stall it), so spawn one per attempt with
/// `caf::detached`.
/// @param transport The cluster's MIDDLEMAN actor (spawn_transport);
///        invalid = CAF's default middleman (plain TCP).
connector_actor::behavior_type connector(connector_actor::pointer self,
                                         caf::io::middleman_actor transport);

} // namespace osb
